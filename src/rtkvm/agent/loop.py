"""The agent's loop: register, reconcile, then heartbeat and carry out work until stopped.

:class:`Agent` talks to its control plane through the node port
(:class:`rtkvm.agent.port.ControlPlane`; rtkvm's API implements it with the
host's own agent token, which the API binds to this host). On start it
registers the host (the payload comes from an injected ``inventory``
callable) and reconciles libvirt and the switch with the API's view
(:mod:`rtkvm.agent.reconcile`), asking the API what it knows of unknown
domains (it answers and logs; nobody deletes them). Each :meth:`Agent.step` then sends a
heartbeat (re-registering when the API forgot the registration), fetches
this host's instances and dispatches them: ``building`` -> create,
``deleting`` -> delete, a power task -> :class:`rtkvm.agent.power.PowerTasks`
(never blocking: a guest asked to shut down is looked at again next step),
a guest whose power state changed outside rtkvm -> stopped, active or error
(:func:`rtkvm.agent.power.drift`), reporting the outcome (active / stopped /
error / deleted, with the message). Time and sleeping are injected; nothing here reads the
host or libvirt directly (the executor, the inventory and the measurement
runner do).

Measurements: each step fetches this host's; a
queued one is reported ``running`` and carried out by the injected runner
(:class:`rtkvm.agent.measure.MeasurementRunner`) in ONE background worker
thread, one at a time, so heartbeats and instance work go on meanwhile. Its
instances are busy until the runner has started their domains again: the
liveness check leaves them alone (their domain is stopped for the run) and
the step neither creates nor deletes them (a deletion waits). The worker
reports ``done`` or ``error``; a report the API did not receive is sent again
on the next step. A ``running`` measurement this process did not start (the
agent restarted mid-run) is reported as error and its domains brought back.
The serving half of a round trip across hosts runs in the same worker: the
runner says ``serving`` through the loop once its server listens, and asks
the loop whether the client's half (on the other host) has ended.
A control plane without measurements is run without them.

This module must not delete a domain the API did not ask to delete.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rtkvm.agent.executor import Executor, Outcome
from rtkvm.agent.inventory import dataplane_state
from rtkvm.agent.measure import Finished, instances_of
from rtkvm.agent.port import ControlPlane
from rtkvm.agent.power import PowerTasks, drift
from rtkvm.agent.reconcile import Reconciliation, compare, vanished_fault
from rtkvm.errors import CloudError, NotRegisteredError, RtkvmError
from rtkvm.wire.guest import AgentInstance, RtCheckDoc, StateReport
from rtkvm.wire.lifecycle import STOP_TIMEOUT_S, Task
from rtkvm.wire.measure import AgentMeasurement, MeasurementReport
from rtkvm.wire.node import (
    AgentStats,
    Heartbeat,
    HostReport,
    UnknownDomain,
    UnknownPort,
    UnknownReport,
    UnknownVerdict,
)
from rtkvm.wire.schemas import HostOut

log = logging.getLogger("rtkvm.agent")

RESTARTED = "the agent restarted during the measurement"


class GuestChecker(Protocol):
    """Checks a running guest's RT settings in effect (:mod:`rtkvm.agent.guestcheck`)."""

    def check(self, inst: AgentInstance) -> RtCheckDoc | None:
        """Verified or degraded (with why); None when the guest is not running here."""
        ...


class Runner(Protocol):
    """Carries out measurements (:class:`rtkvm.agent.measure.MeasurementRunner`)."""

    def run(self, m: AgentMeasurement) -> Finished:
        """Measure and start the instances' domains again; never raises."""
        ...

    def serve(
        self, m: AgentMeasurement, ready: Callable[[], None], finished: Callable[[], bool]
    ) -> Finished:
        """The serving half of an rtt across hosts, held until ``finished()``; never raises."""
        ...

    def recover(self, instances: Sequence[AgentInstance]) -> list[str]:
        """Bring back the domains of a run cut short; the faults."""
        ...


@dataclass
class StepResult:
    """What one poll did, by instance id."""

    created: dict[str, Outcome] = field(default_factory=dict)
    deleted: dict[str, Outcome] = field(default_factory=dict)
    drifted: dict[str, Outcome] = field(default_factory=dict)
    """Instances whose guest changed power state outside rtkvm (shut off, started again,
    vanished), with what was reported."""
    powered: dict[str, Outcome] = field(default_factory=dict)
    """Power tasks finished this step, with their outcome."""
    powering: list[str] = field(default_factory=list)
    """Power tasks still under way (a guest asked to shut down)."""
    measuring: str | None = None
    """The measurement this step handed to the worker."""
    waiting: list[str] = field(default_factory=list)
    """Instances whose work (a deletion) waits for the running measurement."""
    consoles: list[str] = field(default_factory=list)
    """Instances whose console log this step sent (a user asked)."""
    rechecked: list[str] = field(default_factory=list)
    """Active instances whose RT check changed this step (reported)."""
    refused: dict[str, str] = field(default_factory=dict)
    """Measurements this step reported as error without running them (an instance not
    active, or cut short by an agent restart), by id, with the fault."""


class Agent:
    """One host's agent, serving the control plane behind ``control``."""

    def __init__(
        self,
        control: ControlPlane,
        inventory: Callable[[], HostReport],
        executor: Executor,
        *,
        ports: Callable[[], set[tuple[str, int]]] = set,
        runner: Runner | None = None,
        checker: GuestChecker | None = None,
        recheck_s: float = 60.0,
        reinspect_s: float = 30.0,
        tuning: Callable[[], str] = str,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.control = control
        self.inventory = inventory
        self.executor = executor
        self.ports = ports
        self.runner = runner
        """Carries out measurements; None: this agent takes none."""
        self.checker = checker
        """Checks guests after every create and start and every ``recheck_s``; None: never."""
        self.recheck_s = recheck_s
        self.reinspect_s = reinspect_s
        """Seconds between two inspections of the host (doctor, wiring) after start."""
        self.tuning = tuning
        """The tuning journal's fingerprint: when it moves (``rtkvm host tune --apply`` or
        ``rollback`` finished), the host is inspected again at the next step."""
        self._tuning_seen: str | None = None
        self.clock = clock
        self.power = PowerTasks(executor, clock, stop_timeout_s)
        """Stops, starts and reboots; a stop waits ``stop_timeout_s`` for the guest."""
        self._registered: HostReport | None = None
        self._inspected_at = 0.0
        self._checked: dict[str, tuple[float, RtCheckDoc]] = {}
        """Instance id -> when it was last checked, and what was found."""
        self._started_at = self.clock()
        self.counts = {k: 0 for k in ("steps", "step_failures", "creates", "create_failures",
                                      "deletes", "rechecks", "power_tasks")}  # fmt: skip
        self._last_step_seconds = 0.0
        self.unknown: list[UnknownVerdict] = []
        """What the API said of the unknown domains and ports of the last reconciliation."""
        self._api = threading.Lock()  # the worker reports while the loop steps
        self._state = threading.Lock()  # guards the measurement fields below
        self._worker: threading.Thread | None = None
        self._busy: frozenset[str] = frozenset()
        self._started: set[str] = set()
        """Measurements this process took on (never taken on twice)."""
        self._unreported: dict[str, Finished] = {}
        self._sending = threading.Lock()
        self._said_no_measurements = False

    # -- the control plane, one call at a time (the worker reports while the loop steps) --

    def register(self, report: HostReport | None = None) -> HostOut:
        if report is None:
            self._tuning_seen = self.tuning()  # before the inspection it covers
            report = self.inventory()
        with self._api:
            host = self.control.register(report)
        self._registered, self._inspected_at = report, self.clock()
        log.info("registered host %s (%s)", host.name, host.status)
        return host

    def stats(self) -> AgentStats:
        degraded = sum(1 for _, found in self._checked.values() if found.state != "verified")
        return AgentStats(
            uptime_seconds=max(self.clock() - self._started_at, 0.0),
            degraded_guests=degraded,
            last_step_seconds=self._last_step_seconds,
            **self.counts,
        )

    def sync_networks(self) -> tuple[list[str], list[str]]:
        """The switch carries the control plane's networks on this host's physical networks
        and drops the ones it carried that are gone; (carried, dropped) now."""
        switch = self.executor.switch
        if switch is None:
            return [], []
        with self._api:
            wanted = self.control.networks()
        added, dropped = [], []
        for net in wanted:
            try:
                if switch.carry(net.name, net.physnet, net.vlan):
                    added.append(net.name)
            except RtkvmError as exc:
                log.warning("network %s cannot be carried here: %s", net.name, exc)
        names = {n.name for n in wanted}
        for name in switch.carried():
            if name not in names and switch.drop(name):
                dropped.append(name)
        if added or dropped:
            log.info("switch networks: carried %s, dropped %s", added or "none", dropped or "none")
        return added, dropped

    def reinspect(self) -> bool:
        """Inspect the host again (doctor, wiring, switch) when ``reinspect_s`` passed or
        the tuning changed, and register again when anything changed: a host that stops
        being RT-ready takes no new RT guests, and its guests show it. True when it
        registered."""
        tuning = self.tuning()
        retuned = self._tuning_seen is not None and tuning != self._tuning_seen
        if not retuned and self.clock() - self._inspected_at < self.reinspect_s:
            return False
        if retuned:
            log.info("the host's tuning changed (rtkvm host tune): inspecting it now")
        self._tuning_seen = tuning
        try:
            self.sync_networks()
        except RtkvmError as exc:  # the API or the switch: the inspection still runs
            log.warning("switch networks not synced: %s", exc)
        report = self.inventory()
        self._inspected_at = self.clock()
        if report == self._registered:
            return False
        before = self._registered.doctor.verdict if self._registered else None
        if before is not None and before != report.doctor.verdict:
            log.warning(
                "host doctor verdict changed: %s -> %s (failed: %s)",
                before,
                report.doctor.verdict,
                ", ".join(report.doctor.failed) or "nothing",
            )
        self.register(report)
        return True

    def heartbeat(self) -> HostOut:
        """Alive, with the switch's current state (a switch that went down keeps
        networked guests away from this host)."""
        beat = Heartbeat(dataplane_state=dataplane_state(self.executor.switch), stats=self.stats())
        try:
            with self._api:
                return self.control.heartbeat(beat)
        except NotRegisteredError:
            log.warning("the control plane lost this host's registration: registering again")
            return self.register()

    def work(self) -> list[AgentInstance]:
        with self._api:
            return self.control.instances()

    def explain(self, found: Reconciliation) -> list[UnknownVerdict]:
        """Tell the control plane about unknown domains and ports; it answers what it knows."""
        if not found.unknown_domains and not found.unknown_ports:
            return []
        report = UnknownReport(
            domains=[
                UnknownDomain(name=d.name, uuid=d.uuid, running=d.running)
                for d in found.unknown_domains
            ],
            ports=[UnknownPort(guest=g, nic=n) for g, n in found.unknown_ports],
        )
        with self._api:
            return self.control.report_unknown(report)

    def report(
        self, inst: AgentInstance, outcome: Outcome, done: Task | None = None
    ) -> AgentInstance:
        """The outcome (finishing power task ``done``); a guest that is now active is checked
        and the check goes with it."""
        rt = self.check(inst) if outcome.state == "active" else None
        if outcome.state != "active":
            self._checked.pop(inst.id, None)
        report = StateReport(state=outcome.state, fault=_clip(outcome.fault), rt=rt, done=done)
        with self._api:
            return self.control.report_state(inst.id, report)

    def check(self, inst: AgentInstance) -> RtCheckDoc | None:
        if self.checker is None:
            return None
        try:
            found = self.checker.check(inst)
        except RtkvmError as exc:
            found = RtCheckDoc(state="degraded", reasons=[f"could not be checked: {exc}"])
        if found is not None:
            self._checked[inst.id] = (self.clock(), found)
            if found.state != "verified":
                log.warning("instance %s: RT degraded: %s", inst.id, "; ".join(found.reasons))
        return found

    def recheck(self, work: Sequence[AgentInstance], busy: frozenset[str]) -> list[str]:
        """Check the active guests not checked for ``recheck_s``; report those whose check
        changed. Their ids."""
        if self.checker is None:
            return []
        changed = []
        now = self.clock()
        for inst in work:
            if inst.state != "active" or inst.task is not None or inst.id in busy:
                continue
            last = self._checked.get(inst.id)
            if last is not None and now - last[0] < self.recheck_s:
                continue
            found = self.check(inst)
            if found is None or (last is not None and last[1] == found):
                continue
            with self._api:
                self.control.report_state(inst.id, StateReport(state="active", rt=found))
            changed.append(inst.id)
            self.counts["rechecks"] += 1
        return changed

    def send_consoles(self, work: Sequence[AgentInstance]) -> list[str]:
        """Send the console logs users asked for; the ids sent."""
        sent = []
        for inst in work:
            if not inst.console_wanted:
                continue
            upload = self.executor.console(inst)
            with self._api:
                self.control.report_console(inst.id, upload)
            sent.append(inst.id)
        return sent

    def measurements(self) -> list[AgentMeasurement]:
        """This host's queued and running measurements ([] without a runner or support)."""
        if self.runner is None:
            return []
        with self._api:
            found = self.control.measurements()
        if found is None:
            if not self._said_no_measurements:
                log.info("the control plane has no measurements: running without them")
                self._said_no_measurements = True
            return []
        return found

    def report_measurement(
        self, mid: str, state: str, result: dict[str, Any] | None = None, fault: str | None = None
    ) -> None:
        report = MeasurementReport.model_validate(
            {"state": state, "result": result, "fault": _clip(fault)}
        )
        with self._api:
            self.control.report_measurement(mid, report)

    # -- start-up ---------------------------------------------------------------------

    def reconcile(self) -> Reconciliation:
        """Adopt expected domains, mark vanished ones, report (never delete) unknown ones.

        Measurements cut short by a restart are closed first, so that their domains get
        their own definition back before being adopted."""
        self._close_orphans(self.measurements(), frozenset())
        found = compare(self.work(), self.executor.hypervisor.domains(), self.ports())
        for inst, dom in found.adopt:
            outcome = self.executor.adopt(inst, dom)
            self.report(inst, outcome)
            log.info("adopted %s (%s): %s", dom.name, inst.id, outcome.state)
        for inst in found.vanished:
            self.report(inst, Outcome("error", vanished_fault(inst)))
            log.warning("instance %s: its domain vanished; reported as error", inst.id)
        self.executor.prune_bases()
        self.unknown = self.explain(found)
        for v in self.unknown:
            log.warning(
                "%s %r (%r) is no instance of this host: left alone (%s): %s",
                v.kind,
                v.name,
                v.uuid,
                v.verdict,
                v.hint,
            )
        log.info("reconciled: %s", found.summary())
        try:
            self.sync_networks()
        except RtkvmError as exc:
            log.warning("switch networks not synced: %s", exc)
        return found

    # -- the loop ---------------------------------------------------------------------

    def step(self) -> StepResult:
        """One heartbeat and one pass over this host's work and measurements."""
        began = time.perf_counter()
        try:
            return self._step()
        except RtkvmError:
            self.counts["step_failures"] += 1
            raise
        finally:
            self.counts["steps"] += 1
            self._last_step_seconds = time.perf_counter() - began

    def _step(self) -> StepResult:
        if not self.reinspect():
            self.heartbeat()
        result = StepResult()
        self.send_finished()
        measurements = self.measurements()
        busy = self.busy()  # before listing domains: a run ends only after restarting them
        result.refused.update(self._close_orphans(measurements, busy))
        work = self.work()
        for inst, outcome in drift(work, self.executor.hypervisor.domains()):
            if inst.id in busy:
                continue  # stopped or redefined for the measurement
            self.report(inst, outcome)
            result.drifted[inst.id] = outcome
            log.warning("instance %s: %s %s", inst.id, outcome.state, outcome.fault or "")
        for inst in work:
            if inst.id in busy:
                if inst.state in ("building", "deleting") or inst.task is not None:
                    result.waiting.append(inst.id)
                    log.info("instance %s: %s waits for its measurement", inst.id, inst.state)
                continue
            if inst.state == "building":
                built = self.executor.create(inst)
                if built is None:  # its image is still being fetched
                    result.waiting.append(inst.id)
                    continue
                outcome = built
                result.created[inst.id] = outcome
                self.counts["creates" if outcome.state == "active" else "create_failures"] += 1
            elif inst.state == "deleting":
                outcome = self.executor.delete(inst)
                result.deleted[inst.id] = outcome
                self.counts["deletes"] += outcome.state == "deleted"
            elif inst.task is not None and inst.id not in result.drifted:
                powered = self.power.advance(inst)
                if powered is None:
                    result.powering.append(inst.id)
                    continue
                result.powered[inst.id] = powered
                self.counts["power_tasks"] += 1
                self.report(inst, powered, done=inst.task)
                fault = powered.fault or ""
                log.info("instance %s: %s -> %s %s", inst.id, inst.task, powered.state, fault)
                continue
            else:
                continue
            self.report(inst, outcome)
            level = logging.INFO if outcome.state != "error" else logging.WARNING
            log.log(level, "instance %s: %s %s", inst.id, outcome.state, outcome.fault or "")
        self.power.forget(i.id for i in work if i.task is not None)
        result.consoles = self.send_consoles(work)
        self._start_next(measurements, work, result)
        settled = [i for i in work if i.id not in result.drifted and i.id not in result.powered]
        result.rechecked = self.recheck(settled, self.busy())
        return result

    # -- measurements -----------------------------------------------------------------

    def busy(self) -> frozenset[str]:
        """Ids of the instances the running measurement holds."""
        with self._state:
            return self._busy

    def measuring(self) -> bool:
        with self._state:
            return self._worker is not None and self._worker.is_alive()

    def wait_measurement(self, timeout: float | None = None) -> None:
        """Let the running measurement finish (its domains started again) and report it."""
        with self._state:
            worker = self._worker
        if worker is not None and worker.is_alive():
            log.info("waiting for the running measurement to finish")
            worker.join(timeout)
        try:
            self.send_finished()
        except RtkvmError as exc:  # the next start reports it as cut short
            log.warning("finished measurements not reported: %s", exc)

    def send_finished(self) -> None:
        """Report finished measurements; those the API did not receive stay for next time."""
        if not self._sending.acquire(blocking=False):
            return  # the other thread is sending them
        try:
            with self._state:
                pending = dict(self._unreported)
            for mid, done in pending.items():
                try:
                    self.report_measurement(mid, done.state, done.result, done.fault)
                except CloudError as exc:
                    if exc.transient or exc.unauthorized:
                        log.warning("measurement %s: report retried next step: %s", mid, exc)
                        continue
                    log.warning("measurement %s: the API refused its report: %s", mid, exc)
                except (TypeError, ValueError) as exc:  # a result that is no JSON
                    log.exception("measurement %s: its result cannot be sent", mid)
                    with self._state:
                        self._unreported[mid] = Finished("error", fault=f"unsendable result: {exc}")
                    continue
                with self._state:
                    self._unreported.pop(mid, None)
                log.info("measurement %s: %s %s", mid, done.state, done.fault or "")
        finally:
            self._sending.release()

    def _finish(self, mid: str, done: Finished) -> None:
        with self._state:
            self._unreported[mid] = done

    def _close_orphans(
        self, measurements: Sequence[AgentMeasurement], busy: frozenset[str]
    ) -> dict[str, str]:
        """Running measurements this process did not start: bring back their domains,
        report them as error. Returns the faults by measurement id."""
        closed: dict[str, str] = {}
        for m in measurements:
            if m.state != "running" or m.id in self._started or self.runner is None:
                continue
            self._started.add(m.id)
            fault = RESTARTED
            try:
                faults = self.runner.recover([i for i in instances_of(m) if i.id not in busy])
            except RtkvmError as exc:
                faults = [f"its domains could not be checked: {exc}"]
            if faults:
                fault += "; " + "; ".join(faults)
            log.warning("measurement %s: %s", m.id, fault)
            self._finish(m.id, Finished("error", fault=fault))
            closed[m.id] = fault
        if closed:
            self.send_finished()
        return closed

    def _start_next(
        self,
        measurements: Sequence[AgentMeasurement],
        work: list[AgentInstance],
        result: StepResult,
    ) -> None:
        """Hand the first queued measurement to the worker (when none runs)."""
        if self.runner is None or self.measuring():
            return
        by_id = {inst.id: inst for inst in work}
        for m in measurements:
            if m.state != "queued" or m.id in self._started:
                continue
            fault = _not_ready(m, by_id, result)
            if fault is not None:
                self._started.add(m.id)
                self._finish(m.id, Finished("error", fault=fault))
                result.refused[m.id] = fault
                continue
            try:
                self.report_measurement(m.id, "running")
            except CloudError as exc:
                if exc.transient:
                    raise
                log.warning("measurement %s: the API refused to start it: %s", m.id, exc)
                self._started.add(m.id)
                continue
            self._started.add(m.id)
            worker = threading.Thread(
                target=self._measure, args=(m,), name=f"rtkvm-measure-{m.id[:8]}", daemon=True
            )
            with self._state:
                self._busy = frozenset(i.id for i in instances_of(m))
                self._worker = worker
            worker.start()
            result.measuring = m.id
            log.info("measurement %s (%s): started", m.id, m.kind)
            break
        self.send_finished()

    def _measure(self, m: AgentMeasurement) -> None:
        """The worker thread: run, free the instances, report (or leave it to the next step)."""
        assert self.runner is not None
        try:
            if m.role == "serve":
                done = self.runner.serve(m, lambda: self._serving(m.id), lambda: self._ended(m.id))
            else:
                done = self.runner.run(m)
        except Exception as exc:  # the runner does not raise; a worker must report anyway
            log.exception("measurement %s: the runner failed", m.id)
            done = Finished("error", fault=f"{m.kind} measurement failed: {exc!r}")
        with self._state:
            self._busy = frozenset()
            self._unreported[m.id] = done
        self.send_finished()

    def _serving(self, mid: str, tries: int = 5, pause: float = 2.0) -> None:
        """Say that this host's sockperf server listens (the client's host may start)."""
        for attempt in range(tries):
            try:
                self.report_measurement(mid, "serving")
                return
            except CloudError as exc:
                if not exc.transient or attempt == tries - 1:
                    raise
                log.warning("measurement %s: serving not reported yet: %s", mid, exc)
                time.sleep(pause)

    def _ended(self, mid: str) -> bool:
        """Whether the client's half of a measurement this host serves has ended (or the
        measurement is gone); an unreachable API is not an end."""
        try:
            with self._api:
                found = self.control.measurements()
        except CloudError as exc:
            if exc.unauthorized or not exc.transient:
                raise
            return False
        for m in found or []:
            if m.id == mid and m.role == "serve":
                return m.partner_state in ("done", "error")
        return True

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
        try:
            while True:
                try:
                    self.step()
                except RtkvmError as exc:
                    if once or (isinstance(exc, CloudError) and exc.unauthorized):
                        raise
                    log.warning("step failed, retrying in %g s: %s", interval, exc)
                if once or stop():
                    return
                sleep(interval)
        finally:
            self.wait_measurement()  # never leave its instances stopped


def _not_ready(
    m: AgentMeasurement, work: dict[str, AgentInstance], result: StepResult
) -> str | None:
    """Why a queued measurement cannot run now (an instance not active here), or None."""
    for inst in instances_of(m):
        here = work.get(inst.id)
        if here is None:
            return f"instance {inst.name} ({inst.id}) is not on this host: nothing was measured"
        drifted = result.drifted.get(inst.id)
        if here.state != "active" or here.task is not None or drifted is not None:
            if drifted is not None:
                state = f"is {drifted.state} now"
            else:
                state = f"is {here.task or here.state}"
            return f"instance {inst.name} ({inst.id}) {state}, not active: nothing was measured"
    return None


def _clip(text: str | None, limit: int = 2000) -> str | None:
    """Faults are at most 2000 characters in the API."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."
