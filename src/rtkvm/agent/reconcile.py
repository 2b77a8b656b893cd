"""Reconciliation on agent start: what libvirt and the switch run versus the API's view.

:func:`compare` is pure. Given the instances the API places on this host
(building, active, error, deleting), rtkvm's libvirt domains and the
switch's guest ports, it sorts them into:

- ``adopt``: an instance that is building, active or in error whose domain
  exists (found by UUID = instance id): the agent takes it over (starts it
  if stopped, re-plugs its NICs) and reports it active;
- ``vanished``: an active instance whose domain is gone: reported as error,
  never silently re-created (its pCPUs stay claimed until a user deletes it);
- ``unknown_domains`` and ``unknown_ports``: rtkvm domains and switch ports
  that no instance of this host explains. They are reported, and never
  deleted: a running guest the agent does not know is removed only when an
  operator says so.

Building instances without a domain and deleting instances are ordinary
work for the loop; power changes while the agent runs are
:func:`rtkvm.agent.power.drift`'s. This module must not call libvirt, the
switch or the API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rtkvm.agent.names import domain_name, guest_id
from rtkvm.guest.hypervisor import DomainState
from rtkvm.wire.guest import AgentInstance

ADOPTABLE = ("building", "active", "error")


@dataclass(frozen=True)
class Reconciliation:
    adopt: tuple[tuple[AgentInstance, DomainState], ...]
    vanished: tuple[AgentInstance, ...]
    unknown_domains: tuple[DomainState, ...]
    unknown_ports: tuple[tuple[str, int], ...]

    def summary(self) -> str:
        return (
            f"{len(self.adopt)} adopted, {len(self.vanished)} vanished, "
            f"{len(self.unknown_domains)} unknown domains, "
            f"{len(self.unknown_ports)} unknown switch ports"
        )


def compare(
    instances: Iterable[AgentInstance],
    domains: Iterable[DomainState],
    ports: Iterable[tuple[str, int]],
) -> Reconciliation:
    """Sort domains and ports against the API's instances (see the module docstring)."""
    expected = {inst.id: inst for inst in instances}
    by_uuid = {dom.uuid: dom for dom in domains}
    adopt = []
    unknown = []
    for uuid, dom in sorted(by_uuid.items(), key=lambda item: item[1].name):
        inst = expected.get(uuid)
        if inst is None:
            unknown.append(dom)
        elif inst.state in ADOPTABLE:
            adopt.append((inst, dom))
    vanished = tuple(
        inst for inst in expected.values() if inst.state == "active" and inst.id not in by_uuid
    )
    guests = {guest_id(i) for i in expected}
    stray = tuple(sorted(p for p in ports if p[0] not in guests))
    return Reconciliation(tuple(adopt), vanished, tuple(unknown), stray)


def vanished_fault(inst: AgentInstance) -> str:
    return (
        f"domain {domain_name(inst.id)} vanished from this host while the instance was "
        f"{inst.state}; the agent does not re-create it on its own: start it or reboot it "
        "with --hard to build it again, or delete the instance (its pCPUs stay claimed "
        "until then)"
    )
