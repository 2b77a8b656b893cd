"""Carry out an instance's power task, one step at a time, and follow libvirt's power state.

:class:`PowerTasks` advances a task (rtkvm.wire.lifecycle) without ever
blocking the agent's loop: a stop (and the stop half of a soft reboot)
presses the ACPI power button and comes back on later steps until the guest
is off, or powers it off once the stop timeout passed (Nova's
``shutdown_timeout``, said in the outcome); a start starts the domain (built
again when it is missing); a hard reboot powers off at once, then starts.
The outcome of a finished task is reported with the task as ``done``, and a
started guest is checked like a created one (the loop does that).

:func:`drift` finds instances whose guest changed power state outside rtkvm:
an active one whose domain shut off (the guest powered itself off, QEMU
exited) is stopped, a stopped one whose domain runs again is active, one
whose domain vanished is in error. Instances with a task under way are the
task's business, not drift.

This module must not talk to the API (the loop reports) and must not touch a
domain that is not the instance's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from rtkvm.agent.executor import Executor, Outcome
from rtkvm.agent.reconcile import vanished_fault
from rtkvm.errors import RtkvmError
from rtkvm.guest.hypervisor import DomainState
from rtkvm.wire.guest import AgentInstance
from rtkvm.wire.lifecycle import STOP_TIMEOUT_S

log = logging.getLogger("rtkvm.agent.power")

STOPPING_TASKS = ("stopping", "rebooting")
"""Tasks that ask the guest to power off first (the ACPI button, then the timeout)."""


class PowerTasks:
    """The power tasks of one host's instances, advanced by the agent's loop."""

    def __init__(
        self,
        executor: Executor,
        clock: Callable[[], float],
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        self.executor = executor
        self.clock = clock
        self.stop_timeout_s = stop_timeout_s
        self._deadline: dict[str, float] = {}
        """Instance id -> when the guest whose ACPI button was pressed is powered off."""

    def advance(self, inst: AgentInstance) -> Outcome | None:
        """One step of ``inst.task``: the outcome when it is done, None while under way."""
        task = inst.task
        if task is None:
            return None
        try:
            if task in STOPPING_TASKS:
                return self._stop_then(inst, start=task == "rebooting")
            if task == "starting":
                return self.executor.start(inst)
            if task == "rebooting-hard":
                dom = self.executor.domain_of(inst)
                if dom is not None and dom.running:
                    self.executor.hypervisor.power_off(dom.name)
                return self.executor.start(inst)
        except RtkvmError as exc:
            self._deadline.pop(inst.id, None)
            return Outcome("error", f"{task} failed: {exc}")
        return Outcome("error", f"unknown power task {task!r}: this agent is older than its API")

    def forget(self, keep: Iterable[str]) -> None:
        """Drop the deadlines of instances that no longer have a task."""
        wanted = set(keep)
        for ident in [i for i in self._deadline if i not in wanted]:
            del self._deadline[ident]

    def _stop_then(self, inst: AgentInstance, *, start: bool) -> Outcome | None:
        dom = self.executor.domain_of(inst)
        note: str | None = None
        if dom is None:
            if start:  # a reboot builds it again
                self._deadline.pop(inst.id, None)
                return self.executor.start(inst)
            self._deadline.pop(inst.id, None)
            return Outcome("error", vanished_fault(inst))
        if dom.running:
            now = self.clock()
            deadline = self._deadline.get(inst.id)
            if deadline is None:
                self.executor.hypervisor.shutdown(dom.name)
                self._deadline[inst.id] = now + self.stop_timeout_s
                log.info("instance %s: ACPI power button pressed (%s)", inst.id, inst.task)
                return None
            if now < deadline:
                return None
            self.executor.hypervisor.power_off(dom.name)
            note = (
                f"powered off after {self.stop_timeout_s:g} s: the guest did not shut down "
                "on the ACPI power button"
            )
            log.warning("instance %s: %s", inst.id, note)
        self._deadline.pop(inst.id, None)
        if start:
            return self.executor.start(inst)
        return Outcome("stopped", note)


def drift(
    instances: Iterable[AgentInstance], domains: Iterable[DomainState]
) -> list[tuple[AgentInstance, Outcome]]:
    """Instances whose guest's power state changed outside rtkvm, with what to report."""
    by_uuid = {dom.uuid: dom for dom in domains}
    found: list[tuple[AgentInstance, Outcome]] = []
    for inst in instances:
        if inst.task is not None or inst.state not in ("active", "stopped"):
            continue
        dom = by_uuid.get(inst.id)
        if dom is None:
            found.append((inst, Outcome("error", vanished_fault(inst))))
        elif inst.state == "active" and not dom.running:
            found.append(
                (
                    inst,
                    Outcome(
                        "stopped",
                        f"domain {dom.name} shut off without a stop through rtkvm (the guest "
                        "powered itself off, or QEMU exited); start it with `rtkvm cloud "
                        "server start`",
                    ),
                )
            )
        elif inst.state == "stopped" and dom.running:
            found.append((inst, Outcome("active")))
    return found
