"""The agent's loop: register, reconcile, then heartbeat and carry out work until stopped.

:class:`Agent` talks to the API through :class:`~rtkvm.client.CloudClient`
with the host's own agent token (the API binds it to this host). On start it
registers the host (the payload comes from an injected ``inventory``
callable) and reconciles libvirt and the switch with the API's view
(:mod:`rtkvm.agent.reconcile`), asking the API what it knows of unknown
domains (it answers and logs; nobody deletes them). Each :meth:`Agent.step` then sends a
heartbeat (re-registering when the API forgot the registration), fetches
this host's instances and dispatches them: ``building`` -> create,
``deleting`` -> delete, an active one whose domain stopped or vanished ->
error, reporting the outcome (active / error / deleted,
with the message). Time and sleeping are injected; nothing here reads the
host or libvirt directly (the executor and the inventory do).

This module must not delete a domain the API did not ask to delete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rtkvm.agent.executor import Executor, Outcome
from rtkvm.agent.inventory import dataplane_state
from rtkvm.agent.reconcile import Reconciliation, compare, lost, vanished_fault
from rtkvm.api.schemas import (
    AgentInstance,
    HostReport,
    UnknownDomain,
    UnknownPort,
    UnknownReport,
    UnknownVerdict,
)
from rtkvm.client import CloudClient, CloudError
from rtkvm.errors import RtkvmError

log = logging.getLogger("rtkvm.agent")

NOT_REGISTERED = 409


@dataclass
class StepResult:
    """What one poll did, by instance id."""

    created: dict[str, Outcome] = field(default_factory=dict)
    deleted: dict[str, Outcome] = field(default_factory=dict)
    lost: dict[str, str] = field(default_factory=dict)
    """Active instances whose domain stopped or vanished, with the fault reported."""


class Agent:
    """One host's agent; every API call uses the host-bound agent token of ``client``."""

    def __init__(
        self,
        client: CloudClient,
        inventory: Callable[[], HostReport],
        executor: Executor,
        *,
        ports: Callable[[], set[tuple[str, int]]] = set,
    ) -> None:
        self.client = client
        self.inventory = inventory
        self.executor = executor
        self.ports = ports
        self.unknown: list[UnknownVerdict] = []
        """What the API said of the unknown domains and ports of the last reconciliation."""

    # -- API calls ------------------------------------------------------------------

    def register(self) -> dict[str, Any]:
        body = self.inventory().model_dump(mode="json")
        host = dict(self.client.call("PUT", "/v1/agent/host", json=body))
        log.info("registered host %s (%s)", host["name"], host["status"])
        return host

    def heartbeat(self) -> dict[str, Any]:
        """Alive, with the switch's current state (a switch that went down keeps
        networked guests away from this host)."""
        body = {"dataplane_state": dataplane_state(self.executor.switch)}
        try:
            return dict(self.client.call("POST", "/v1/agent/heartbeat", json=body))
        except CloudError as exc:
            if exc.status != NOT_REGISTERED:
                raise
            log.warning("the API lost this host's registration: registering again")
            return self.register()

    def work(self) -> list[AgentInstance]:
        rows = self.client.call("GET", "/v1/agent/instances")
        return [AgentInstance.model_validate(row) for row in rows]

    def explain(self, found: Reconciliation) -> list[UnknownVerdict]:
        """Tell the API about unknown domains and ports; it answers what it knows (and logs)."""
        if not found.unknown_domains and not found.unknown_ports:
            return []
        body = UnknownReport(
            domains=[
                UnknownDomain(name=d.name, uuid=d.uuid, running=d.running)
                for d in found.unknown_domains
            ],
            ports=[UnknownPort(guest=g, nic=n) for g, n in found.unknown_ports],
        )
        rows = self.client.call("POST", "/v1/agent/unknown", json=body.model_dump())
        return [UnknownVerdict.model_validate(row) for row in rows]

    def report(self, inst: AgentInstance, outcome: Outcome) -> dict[str, Any]:
        body = {"state": outcome.state, "fault": _clip(outcome.fault)}
        path = f"/v1/agent/instances/{inst.id}/state"
        return dict(self.client.call("POST", path, json=body))

    # -- start-up ---------------------------------------------------------------------

    def reconcile(self) -> Reconciliation:
        """Adopt expected domains, mark vanished ones, report (never delete) unknown ones."""
        found = compare(self.work(), self.executor.hypervisor.domains(), self.ports())
        for inst, dom in found.adopt:
            outcome = self.executor.adopt(inst, dom)
            self.report(inst, outcome)
            log.info("adopted %s (%s): %s", dom.name, inst.id, outcome.state)
        for inst in found.vanished:
            self.report(inst, Outcome("error", vanished_fault(inst)))
            log.warning("instance %s: its domain vanished; reported as error", inst.id)
        self.unknown = self.explain(found)
        for v in self.unknown:
            log.warning(
                "%s %s (%s) is no instance of this host: left alone (%s): %s",
                v.kind,
                v.name,
                v.uuid,
                v.verdict,
                v.hint,
            )
        log.info("reconciled: %s", found.summary())
        return found

    # -- the loop ---------------------------------------------------------------------

    def step(self) -> StepResult:
        """One heartbeat and one pass over this host's work."""
        self.heartbeat()
        result = StepResult()
        work = self.work()
        for inst, fault in lost(work, self.executor.hypervisor.domains()):
            self.report(inst, Outcome("error", fault))
            result.lost[inst.id] = fault
            log.warning("instance %s: %s", inst.id, fault)
        for inst in work:
            if inst.state == "building":
                outcome = self.executor.create(inst)
                result.created[inst.id] = outcome
            elif inst.state == "deleting":
                outcome = self.executor.delete(inst)
                result.deleted[inst.id] = outcome
            else:
                continue
            self.report(inst, outcome)
            level = logging.INFO if outcome.state != "error" else logging.WARNING
            log.log(level, "instance %s: %s %s", inst.id, outcome.state, outcome.fault or "")
        return result

    def run(
        self,
        *,
        interval: float = 5.0,
        once: bool = False,
        stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        """Register, reconcile, then step every ``interval`` s until ``stop()`` (or once).

        At start, an API that cannot be reached (the agent may boot before it) or a
        hypervisor that does not answer yet is retried every ``interval`` s; an API
        refusal (bad token, bad report) is raised. Later, only a refused token
        (401/403) stops the loop: other failures are logged and the step retried.
        """
        while True:
            try:
                self.register()
                self.reconcile()
                break
            except RtkvmError as exc:
                if once or (isinstance(exc, CloudError) and exc.status is not None):
                    raise
                log.warning("cannot start yet, retrying in %g s: %s", interval, exc)
            if stop():
                return
            sleep(interval)
        while True:
            try:
                self.step()
            except RtkvmError as exc:
                if once or (isinstance(exc, CloudError) and exc.status in (401, 403)):
                    raise
                log.warning("step failed, retrying in %g s: %s", interval, exc)
            if once or stop():
                return
            sleep(interval)


def _clip(text: str | None, limit: int = 2000) -> str | None:
    """Faults are at most 2000 characters in the API."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."
