"""The hypervisor as guest building sees it: a small protocol, and its libvirt implementation.

:class:`Hypervisor` lists rtkvm's domains (with UUID and whether they run),
defines a domain from XML, starts one, asks one to shut down or powers it
off, and stops and undefines one.
:class:`LibvirtHypervisor` implements it with ``rtkvm.guest.lifecycle`` on
any libvirt URI (``qemu:///system`` on a node, ``test:///default`` in tests).
This module must not design domains or decide what to run (the guest
builder, the agent's executor and reconciliation do), and it only ever
removes domains tagged as rtkvm's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import libvirt

from rtkvm.errors import GuestError
from rtkvm.guest import lifecycle


@dataclass(frozen=True)
class DomainState:
    name: str
    uuid: str
    running: bool


class Hypervisor(Protocol):
    def domains(self) -> list[DomainState]:
        """rtkvm's domains on this host (other domains are none of the agent's business)."""
        ...

    def define(self, xml: str, *, start: bool = False) -> str:
        """Define a persistent domain and (``start``) start it; its name. A domain
        that does not start is undefined again: nothing half-made stays."""
        ...

    def start(self, name: str) -> None: ...

    def shutdown(self, name: str) -> None:
        """Ask the guest to power off (the ACPI power button); returns at once."""
        ...

    def power_off(self, name: str) -> None:
        """Power the domain off at once (QEMU ends); nothing when it does not run."""
        ...

    def remove(self, name: str) -> None:
        """Stop and undefine the domain; nothing when it does not exist."""
        ...


class LibvirtHypervisor:
    """Hypervisor over libvirt; one short connection per call (the agent is long-lived)."""

    def __init__(self, uri: str = lifecycle.DEFAULT_URI) -> None:
        self.uri = uri

    def domains(self) -> list[DomainState]:
        with lifecycle.connect(self.uri) as conn:
            return sorted(
                (
                    DomainState(str(d.name()), str(d.UUIDString()), bool(d.isActive()))
                    for d in conn.listAllDomains(0)
                    if lifecycle.is_rtkvm(d)
                ),
                key=lambda d: d.name,
            )

    def define(self, xml: str, *, start: bool = False) -> str:
        with lifecycle.connect(self.uri) as conn:  # one connection: the test driver
            name = lifecycle.define(conn, xml)  # forgets a domain when it closes
            if start:
                try:
                    lifecycle.start(conn, name)
                except GuestError:
                    lifecycle.delete(conn, name)
                    raise
            return name

    def start(self, name: str) -> None:
        with lifecycle.connect(self.uri) as conn:
            lifecycle.start(conn, name)

    def shutdown(self, name: str) -> None:
        with lifecycle.connect(self.uri) as conn:
            lifecycle.shutdown(conn, name)

    def power_off(self, name: str) -> None:
        with lifecycle.connect(self.uri) as conn:
            lifecycle.stop(conn, name)

    def remove(self, name: str) -> None:
        with lifecycle.connect(self.uri) as conn:
            try:
                conn.lookupByName(name)
            except libvirt.libvirtError:
                return
            lifecycle.delete(conn, name)
