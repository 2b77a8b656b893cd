"""Run a measurement the API asked of this host: cyclictest in an instance, or rtt between two.

:class:`MeasurementRunner` takes an :class:`AgentMeasurement`, finds its
instances' domains by name (:func:`rtkvm.agent.names.domain_name`), powers
them off (the guest image is stateless: a hard stop loses nothing), runs
:func:`rtkvm.guest.run.measure_guest` or
:func:`rtkvm.guest.netrun.rtt_from_guest` on them (both boot the shut-off
guest afresh with the measurement on its command line, then stop it and
restore its definition) and ALWAYS starts the domains again afterwards,
also when the measurement failed. It returns a :class:`Finished`: ``done``
with the same JSON as ``rtkvm guest measure --save`` (``Measurement.to_dict``)
or ``rtkvm net rtt -f json`` (with the run's own warnings: emulation,
histogram overflow, threads not as designed; not the host's RT waiver, which
the API attaches to every measurement), or ``error`` with the fault. :meth:`recover`
brings back domains a measurement left behind when the agent stopped mid-run.
A server on its tenant's image is never stopped: its cyclictest runs through
its guest agent while it keeps running (:mod:`rtkvm.guest.agentrun`), and so
does a round trip between two such servers (:mod:`rtkvm.guest.agentrtt`), on
the addresses their users gave.

A round trip across hosts is run in halves, one by each host's agent
(``AgentMeasurement.role``): :meth:`MeasurementRunner.serve` keeps the
peer's sockperf server up (a probe rebooted into its server role, or the
server started through a tenant guest's agent), says so through ``ready``
and holds it until ``finished`` says the client's half ended (or a deadline
passed); :meth:`MeasurementRunner.run` of a ``client`` half measures from
the client alone against it.

The libvirt connection comes from an injected factory (one per run, opened
in the calling thread) and /proc from an injected HostFS. This module must
not talk to the API (the loop reports), touch a domain that is not one of
the measurement's instances, or change the host's tuning.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import libvirt
from pydantic import BaseModel, ValidationError

from rtkvm.agent.names import domain_name
from rtkvm.errors import InputError, MeasureError, RtkvmError
from rtkvm.guest import lifecycle
from rtkvm.guest.agentrtt import client_running, rtt_running, serving_running
from rtkvm.guest.agentrun import measure_running
from rtkvm.guest.netcmd import check_address
from rtkvm.guest.netrun import rtt_client, rtt_from_guest, serving
from rtkvm.guest.run import CyclictestParams, Measurement, measure_guest
from rtkvm.hostfs import HostFS
from rtkvm.measure.report import TCG_WARNING
from rtkvm.net.rtt import RttReport
from rtkvm.serialize import to_jsonable
from rtkvm.wire.guest import AgentInstance
from rtkvm.wire.measure import AgentMeasurement, CyclictestParamsIn, RttParamsIn

log = logging.getLogger("rtkvm.agent.measure")
_P = TypeVar("_P", bound=BaseModel)

Connect = Callable[[], AbstractContextManager[Any]]
"""Opens a libvirt connection (closed on exit): ``lambda: lifecycle.connect(uri)``."""
MeasureGuest = Callable[..., Measurement]
MeasureRunning = Callable[..., dict[str, Any]]
RttRunning = Callable[..., dict[str, Any]]
RttFromGuest = Callable[..., RttReport]
RttClient = Callable[..., RttReport]
ClientRunning = Callable[..., dict[str, Any]]
Serving = Callable[..., AbstractContextManager[Any]]
"""A context manager that keeps a sockperf server up: netrun.serving, agentrtt.serving_running."""

SERVE_SLACK_S = 120.0
"""Seconds a serving half waits for the client's half beyond the boot timeout and the
run itself, before it stops serving and says the client's half never ended."""
HOLD_POLL_S = 2.0

DEFAULT_TIMEOUT = 300.0
"""Seconds a guest may take to boot and finish (TCG guests boot in 10-20 s)."""
_RUN_WORD = re.compile(r'\s*\brtkvm\.[a-z_]+=(?:"[^"]*"|\S+)')
"""A word a measurement adds to the kernel command line (agent guests carry none)."""


@dataclass(frozen=True)
class Finished:
    """What the loop reports of a measurement."""

    state: Literal["done", "error"]
    result: dict[str, Any] | None = None
    fault: str | None = None


def strip_run_words(cmdline: str) -> str:
    """The command line without the ``rtkvm.*=`` words a measurement put on it."""
    return _RUN_WORD.sub("", cmdline).strip()


def instances_of(m: AgentMeasurement) -> list[AgentInstance]:
    """The instances this host's half of ``m`` holds."""
    if m.role == "client" or m.peer is None:
        return [m.server]
    if m.role == "serve":
        return [m.peer]
    return [m.server, m.peer]


class MeasurementRunner:
    """Runs one measurement at a time on this host's libvirt (see the module docstring)."""

    def __init__(
        self,
        connect: Connect,
        fs: HostFS,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        measure: MeasureGuest = measure_guest,
        rtt: RttFromGuest = rtt_from_guest,
        measure_running: MeasureRunning = measure_running,
        rtt_running: RttRunning = rtt_running,
        rtt_client: RttClient = rtt_client,
        client_running: ClientRunning = client_running,
        serving: Serving = serving,
        serving_running: Serving = serving_running,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.connect = connect
        self.fs = fs
        self.timeout = timeout
        self.measure = measure
        self.rtt = rtt
        self.measure_running = measure_running
        self.rtt_running = rtt_running
        self.rtt_client = rtt_client
        self.client_running = client_running
        self.serving = serving
        self.serving_running = serving_running
        self.clock = clock
        self.sleep = sleep

    def run(self, m: AgentMeasurement) -> Finished:
        """Stop the instances' domains, measure, start them again; never raises. A server
        on its tenant's image is measured running, through its guest agent."""
        if any(i.image_ref is not None for i in instances_of(m)):
            return self._in_running_guest(m)
        instances = instances_of(m)
        names = [domain_name(i.id) for i in instances]
        try:
            run = self._prepare(m)
        except RtkvmError as exc:
            return Finished("error", fault=f"{m.kind} measurement {m.id}: {exc}")
        try:
            with self.connect() as conn:
                missing = [
                    f"{inst.name} ({name})"
                    for inst, name in zip(instances, names, strict=True)
                    if not lifecycle.exists(conn, name)
                ]
                if missing:
                    return Finished(
                        "error",
                        fault=f"the domain of instance {', '.join(missing)} is not defined on "
                        "this host: nothing was measured",
                    )
                outcome = self._measure(conn, m, names, run)
                failed = self._start(conn, names)
        except RtkvmError as exc:  # no libvirt connection: nothing was stopped
            return Finished("error", fault=f"{m.kind} measurement {m.id}: {exc}")
        if failed:
            fault = "; ".join(failed)
            if outcome.fault:
                fault = f"{outcome.fault}; and {fault}"
            return Finished("error", outcome.result, fault)
        return outcome

    def serve(
        self, m: AgentMeasurement, ready: Callable[[], None], finished: Callable[[], bool]
    ) -> Finished:
        """The serving half of a round trip across hosts: the peer's sockperf server up,
        ``ready()`` called, held until ``finished()`` or the deadline; never raises. A probe
        peer is rebooted into its server role and started again after; a tenant's keeps
        running."""
        what = f"serving {m.peer.name if m.peer else '?'} for rtt measurement {m.id}"
        try:
            if m.peer is None or m.role != "serve":
                raise InputError("only the serving half of an rtt across hosts is served")
            r = _params(RttParamsIn, m)
            ip = str(check_address(r.server_address).ip)
            deadline = self.clock() + self.timeout + r.seconds + SERVE_SLACK_S
            name = domain_name(m.peer.id)
            if m.peer.image_ref is not None:
                with (
                    self.connect() as conn,
                    self.serving_running(
                        conn, name, server_address=r.server_address, label=m.peer.name
                    ) as facts,
                ):
                    ready()
                    self._hold(finished, deadline)
                return Finished("done", dict(facts))
            return self._serve_probe(m.peer, name, ip, r, ready, finished, deadline)
        except RtkvmError as exc:
            return Finished("error", fault=f"{what} failed: {exc}")
        except Exception as exc:  # a worker thread must report, not die
            log.exception("measurement %s failed unexpectedly", m.id)
            return Finished("error", fault=f"{what} failed: {exc!r}")

    def _serve_probe(
        self,
        peer: AgentInstance,
        name: str,
        ip: str,
        r: RttParamsIn,
        ready: Callable[[], None],
        finished: Callable[[], bool],
        deadline: float,
    ) -> Finished:
        with self.connect() as conn:
            if not lifecycle.exists(conn, name):
                return Finished(
                    "error",
                    fault=f"the domain of instance {peer.name} ({name}) is not defined on this "
                    "host: nothing was served",
                )
            outcome = Finished("done", {"role": "server", "method": "probe-reboot",
                                        "address": r.server_address})  # fmt: skip
            try:
                lifecycle.stop(conn, name)
                with self.serving(conn, name, ip, timeout=self.timeout, address=r.server_address):
                    ready()
                    self._hold(finished, deadline)
            except RtkvmError as exc:
                outcome = Finished("error", fault=f"serving {peer.name} failed: {exc}")
            except Exception as exc:  # the probe must be started again whatever happened
                log.exception("serving %s failed unexpectedly", peer.name)
                outcome = Finished("error", fault=f"serving {peer.name} failed: {exc!r}")
            failed = self._start(conn, [name])
        if failed:
            faults = [outcome.fault] if outcome.fault else []
            return Finished("error", outcome.result, "; ".join(faults + failed))
        return outcome

    def _hold(self, finished: Callable[[], bool], deadline: float) -> None:
        """Until the client's half ended; MeasureError past the deadline."""
        while not finished():
            if self.clock() >= deadline:
                raise MeasureError(
                    "the client's half did not end in time: stopped serving (is the client's "
                    "host's agent running?)"
                )
            self.sleep(HOLD_POLL_S)

    def recover(self, instances: Sequence[AgentInstance]) -> list[str]:
        """After a run cut short (agent restart): restore the definition of shut-off domains
        (without the measurement's command line words) and start them; returns the faults."""
        faults: list[str] = []
        with self.connect() as conn:
            # a vanished domain is left to the loop's liveness check
            names = [n for n in (domain_name(i.id) for i in instances) if lifecycle.exists(conn, n)]
            for name in names:
                try:
                    self._restore(conn, name)
                except RtkvmError as exc:
                    faults.append(f"domain {name}: {exc}")
            faults += self._start(conn, names)
        return faults

    def _in_running_guest(self, m: AgentMeasurement) -> Finished:
        """cyclictest or a round trip through the guest agents: the tenants' systems keep
        running."""
        if m.kind == "rtt":
            return self._rtt_in_running_guests(m)
        name = domain_name(m.server.id)
        try:
            c = _params(CyclictestParamsIn, m)
            params = CyclictestParams(c.loops, c.interval_us, c.buckets, c.priority)
            with self.connect() as conn:
                result = self.measure_running(conn, self.fs, name, params, timeout=self.timeout)
        except RtkvmError as exc:
            return Finished("error", fault=f"cyclictest in {m.server.name} failed: {exc}")
        except Exception as exc:  # a worker thread must report, not die
            log.exception("measurement %s failed unexpectedly", m.id)
            return Finished("error", fault=f"cyclictest in {m.server.name} failed: {exc!r}")
        warnings = list(result.pop("notes", []))
        if result["accel"] == "tcg":
            warnings.append(TCG_WARNING)
        if result["latency"].get("overflowed"):
            warnings.append("samples overflowed the histogram: no percentiles; raise buckets")
        return Finished("done", result | {"warnings": warnings})

    def _rtt_in_running_guests(self, m: AgentMeasurement) -> Finished:
        what = f"rtt {m.server.name} -> {m.peer.name if m.peer else '?'}"
        try:
            if m.peer is None or m.peer.image_ref is None or m.server.image_ref is None:
                raise InputError(
                    "a round trip through guest agents needs two servers on their tenants' "
                    "images (a probe server is measured by rebooting it)"
                )
            r = _params(RttParamsIn, m)
            if m.role == "client":
                with self.connect() as conn:
                    result = self.client_running(
                        conn,
                        domain_name(m.server.id),
                        str(check_address(r.server_address).ip),
                        client_address=r.client_address,
                        label=m.server.name,
                        server_label=m.peer.name,
                        seconds=r.seconds,
                        mps=r.mps,
                        bucket_us=r.bucket_us,
                    )
                return Finished("done", result)
            with self.connect() as conn:
                result = self.rtt_running(
                    conn,
                    domain_name(m.server.id),
                    domain_name(m.peer.id),
                    client_address=r.client_address,
                    server_address=r.server_address,
                    labels=(m.server.name, m.peer.name),
                    seconds=r.seconds,
                    mps=r.mps,
                    bucket_us=r.bucket_us,
                )
        except RtkvmError as exc:
            return Finished("error", fault=f"{what} failed: {exc}")
        except Exception as exc:  # a worker thread must report, not die
            log.exception("measurement %s failed unexpectedly", m.id)
            return Finished("error", fault=f"{what} failed: {exc!r}")
        return Finished("done", result)

    # -- steps --------------------------------------------------------------------------

    def _prepare(self, m: AgentMeasurement) -> Callable[[Any, list[str]], dict[str, Any]]:
        """Check the parameters; returns what measures, given the connection and domains."""
        # The run's own facts only: a host's RT waiver belongs to the placement, and the
        # API shows it with every measurement (MeasurementOut.rt_waiver).
        warnings: list[str] = []
        if m.kind == "cyclictest":
            c = _params(CyclictestParamsIn, m)
            params = CyclictestParams(c.loops, c.interval_us, c.buckets, c.priority)

            def cyclictest(conn: Any, names: list[str]) -> dict[str, Any]:
                done = self.measure(conn, self.fs, names[0], params, timeout=self.timeout)
                return done.to_dict() | {"warnings": warnings + _notes(done)}

            return cyclictest
        r = _params(RttParamsIn, m)
        if m.peer is None:
            raise InputError("an rtt measurement needs a peer instance (the sockperf server)")
        server_ip = str(check_address(r.server_address).ip)
        check_address(r.client_address)
        run: dict[str, Any] = {"seconds": r.seconds, "mps": r.mps, "bucket_us": r.bucket_us,
                               "timeout": self.timeout, "warnings": warnings}  # fmt: skip
        peer = m.peer.name

        if m.role == "client":  # the peer's host serves it

            def client(conn: Any, names: list[str]) -> dict[str, Any]:
                report = self.rtt_client(
                    conn, names[0], server_ip, f"guest {peer}", address=r.client_address, **run
                )
                return dict(to_jsonable(report)) | {"method": "probe-reboot"}

            return client

        def rtt(conn: Any, names: list[str]) -> dict[str, Any]:
            report = self.rtt(
                conn, names[0], server_ip, server_guest=names[1],
                client_address=r.client_address, server_address=r.server_address, **run,
            )  # fmt: skip
            return dict(to_jsonable(report))

        return rtt

    def _measure(
        self, conn: Any, m: AgentMeasurement, names: list[str], run: Callable[..., dict[str, Any]]
    ) -> Finished:
        try:
            for name in names:
                lifecycle.stop(conn, name)
            return Finished("done", run(conn, names))
        except RtkvmError as exc:
            return Finished("error", fault=f"{m.kind} measurement failed: {exc}")
        except Exception as exc:  # a worker thread must report, not die
            log.exception("measurement %s failed unexpectedly", m.id)
            return Finished("error", fault=f"{m.kind} measurement failed: {exc!r}")

    def _start(self, conn: Any, names: Iterable[str]) -> list[str]:
        """Start every domain; the faults of those that did not start."""
        failed = []
        for name in names:
            try:
                lifecycle.start(conn, name)
            except (RtkvmError, libvirt.libvirtError) as exc:
                failed.append(f"domain {name} could not be started again: {exc}")
                log.error("domain %s could not be started again: %s", name, exc)
        return failed

    def _restore(self, conn: Any, name: str) -> None:
        dom = lifecycle.domain(conn, name)
        if dom.isActive():
            return
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        cmdline = lifecycle.cmdline_of(xml)
        clean = strip_run_words(cmdline)
        if clean != cmdline:
            lifecycle.redefine(conn, lifecycle.with_cmdline(xml, clean))
            log.warning("domain %s: removed a measurement's words from its command line", name)


def _params(model: type[_P], m: AgentMeasurement) -> _P:
    """The kind's parameters (flat, or under the kind's key); InputError when invalid."""
    raw = m.params.get(m.kind) if isinstance(m.params.get(m.kind), dict) else m.params
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"invalid {m.kind} parameters: {errors}") from None


def _notes(m: Measurement) -> list[str]:
    """What ``rtkvm guest measure`` warns about on stderr."""
    notes = []
    if m.accel == "tcg":
        notes.append(TCG_WARNING)
    if m.result.overflowed:
        notes.append("samples overflowed the histogram: no percentiles; raise buckets")
    if not m.verify.ok:
        notes.append(f"the guest's threads are not as designed ({m.verify.verdict}): see verify")
    return notes
