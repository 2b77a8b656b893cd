"""A round trip between two tenants' running guests, through their guest agents: no reboot.

:func:`rtt_running` checks both guests first (running, guest agent answering,
sockperf installed, the address its user gave on one of its interfaces: rtkvm
never sets one in a tenant's system), then runs rtkvm.net.rttrun's ping-pong
with both ends as :class:`AgentEndpoint`: the sockperf server is started in
the server guest through ``guest-exec`` and left running while the client
runs, then stopped; the client's full log is read back in chunks. Every
command runs pinned with ``taskset`` to its guest's RT vCPUs (to all its vCPUs
when its flavor has none, said as a warning). The result has the shape of
``rtkvm net rtt -f json`` plus ``method``, ``accel``, the vCPUs each end ran
on and both guests' uptimes before and after, so anyone can see that neither
was restarted.

Across hosts each host's agent runs one half: :func:`serving_running` keeps
the sockperf server up in the server guest while the other host's client
runs, and :func:`client_running` runs the client against it; each half says
its own guest's vCPUs, accel and uptimes.

This module must not stop, start or redefine a domain, set an address in a
guest, or parse sockperf's output (rtkvm.net.rtt does).
"""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rtkvm.cpuset import CpuSet
from rtkvm.errors import GuestError, MeasureError
from rtkvm.guest import lifecycle
from rtkvm.guest.agentrun import NOT_RT, uptime
from rtkvm.guest.netcmd import check_address
from rtkvm.guest.qga import COMMAND_TIMEOUT_S, POLL_S, Exited, GuestAgent
from rtkvm.guest.run import cputune_of, rt_and_housekeeping
from rtkvm.measure.report import TCG_WARNING
from rtkvm.net.rtt import DEFAULT_BUCKET_US, DEFAULT_MPS, DEFAULT_SECONDS
from rtkvm.net.rttrun import SOCKPERF, measure, ping_pong, serving
from rtkvm.serialize import to_jsonable

SOCKPERF_PORT = 11111


class AgentProcess:
    """A program left running in a guest (rttrun.ServerHandle over the guest agent)."""

    def __init__(self, agent: GuestAgent, pid: int) -> None:
        self.agent = agent
        self.pid = pid
        self.exited: Exited | None = None

    @property
    def stderr(self) -> io.BytesIO:
        """What it said, once it exited (rttrun reads it when a server did not bind)."""
        said = f"{self.exited.stderr}{self.exited.stdout}" if self.exited else ""
        return io.BytesIO(said.encode())

    def poll(self) -> int | None:
        if self.exited is None:
            self.exited = self.agent.status(self.pid)
        return None if self.exited is None else self.exited.code

    def _signal(self, name: str) -> None:
        if self.poll() is None:  # a program that exited on its own is not signalled
            # the shell's own kill: a minimal image need not have procps
            self.agent.run("sh", ["-c", f"kill -{name} {self.pid}"], timeout=COMMAND_TIMEOUT_S)

    def terminate(self) -> None:
        self._signal("TERM")

    def kill(self) -> None:
        self._signal("KILL")

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (math.inf if timeout is None else timeout)
        while (code := self.poll()) is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(
                    f"pid {self.pid} in {self.agent.name}", timeout or 0
                )
            time.sleep(POLL_S)
        return code


class AgentEndpoint:
    """rttrun.Endpoint in a running guest: its commands pinned to ``cpus`` of the guest."""

    def __init__(self, agent: GuestAgent, name: str, cpus: CpuSet) -> None:
        self.agent = agent
        self.name = name
        self.cpus = cpus

    def _argv(self, args: Sequence[str]) -> tuple[str, list[str]]:
        return "taskset", ["-c", self.cpus.format(), *args]

    def start(self, args: Sequence[str]) -> AgentProcess:
        return AgentProcess(self.agent, self.agent.start(*self._argv(args)))

    def run(self, args: Sequence[str], *, timeout: float) -> str:
        try:
            done = self.agent.run(*self._argv(args), timeout=timeout)
        except GuestError as exc:  # as rttrun expects of an endpoint: a MeasureError
            raise MeasureError(str(exc)) from None
        if done.code != 0:
            raise MeasureError(
                f"{' '.join(args[:2])} in {self.name} exited {done.code}: "
                f"{(done.stderr or done.stdout).strip()[-400:]}"
            )
        return done.stdout + done.stderr

    def read(self, path: str, *, timeout: float) -> str:
        return self.agent.read_file(path)


@dataclass(frozen=True)
class _End:
    """One guest of the round trip, checked."""

    agent: GuestAgent
    label: str
    cpus: CpuSet
    accel: str
    warnings: tuple[str, ...]

    def endpoint(self) -> AgentEndpoint:
        return AgentEndpoint(self.agent, self.label, self.cpus)


def _check(conn: Any, domain: str, label: str, address: str) -> _End:
    """The guest runs, its agent answers, it has sockperf and the user's address."""
    dom = lifecycle.domain(conn, domain)
    agent = GuestAgent(dom, label)
    agent.ping()
    try:
        agent.run(SOCKPERF, ["--version"], timeout=30)
    except GuestError as exc:
        raise GuestError(
            f"{label} cannot run {SOCKPERF} ({exc}): install sockperf in the image "
            "(rtkvm's debian-rt has it)"
        ) from None
    want = check_address(address)
    shown = agent.run("ip", ["-o", "-4", "addr", "show"], timeout=COMMAND_TIMEOUT_S).stdout
    has = [w for line in shown.splitlines() for w in line.split()[3:4]]
    if str(want) not in has:
        raise GuestError(
            f"{label} does not have {want} on any interface (it has {', '.join(has) or 'none'}): "
            "rtkvm never sets an address in a tenant's system; cloud-init sets the one its "
            "user gave (server create --network NET,ip=ADDR/PREFIX) at first boot"
        )
    tune, vcpus, dtype = cputune_of(dom.XMLDesc(0))
    rt, housekeeping = rt_and_housekeeping(tune, vcpus)
    warnings = () if rt else (f"{label}: {NOT_RT}",)
    return _End(agent, label, rt or housekeeping, "kvm" if dtype == "kvm" else "tcg", warnings)


def rtt_running(
    conn: Any,
    client: str,
    server: str,
    *,
    client_address: str,
    server_address: str,
    labels: tuple[str, str] | None = None,
    seconds: int = DEFAULT_SECONDS,
    mps: int = DEFAULT_MPS,
    bucket_us: float = DEFAULT_BUCKET_US,
) -> dict[str, Any]:
    """Round trip from running guest ``client`` to running guest ``server`` (domain names)
    on the addresses their users gave; ``labels`` name them in messages and the path."""
    client_label, server_label = labels or (client, server)
    if client == server:
        raise GuestError(f"{client_label} cannot be its own sockperf server")
    for domain, label in ((client, client_label), (server, server_label)):
        if not lifecycle.domain(conn, domain).isActive():
            raise GuestError(f"{label} is not running: a running guest is measured")
    ends = (
        _check(conn, client, client_label, client_address),
        _check(conn, server, server_label, server_address),
    )
    warnings = [w for end in ends for w in end.warnings]
    if "tcg" in {end.accel for end in ends}:
        warnings.append(TCG_WARNING)
    before = [uptime(end.agent) for end in ends]
    report = measure(
        ends[0].endpoint(),
        ends[1].endpoint(),
        str(check_address(server_address).ip),
        port=SOCKPERF_PORT,
        seconds=seconds,
        mps=mps,
        bucket_us=bucket_us,
        warnings=warnings,
    )
    after = [uptime(end.agent) for end in ends]
    return dict(to_jsonable(report)) | {
        "method": "guest-agent",
        "accel": "tcg" if "tcg" in {end.accel for end in ends} else "kvm",
        "vcpus": {end.label: end.cpus.format() for end in ends},
        "guest_uptime_s": {
            end.label: [round(b, 2), round(a, 2)]
            for end, b, a in zip(ends, before, after, strict=True)
        },
    }


def _running_end(conn: Any, domain: str, label: str, address: str) -> _End:
    if not lifecycle.domain(conn, domain).isActive():
        raise GuestError(f"{label} is not running: a running guest is measured")
    return _check(conn, domain, label, address)


def _tcg(end: _End) -> list[str]:
    return [*end.warnings, TCG_WARNING] if end.accel == "tcg" else list(end.warnings)


@contextlib.contextmanager
def serving_running(
    conn: Any, server: str, *, server_address: str, label: str | None = None
) -> Iterator[dict[str, Any]]:
    """The serving half of a round trip across hosts: a sockperf server in running guest
    ``server`` on the address its user gave, listening while the block runs.

    Yields this half's facts (role, method, accel, vCPUs, warnings); once the block
    ended, they hold the guest's uptimes before and after too."""
    label = label or server
    end = _running_end(conn, server, label, server_address)
    facts: dict[str, Any] = {
        "role": "server",
        "method": "guest-agent",
        "accel": end.accel,
        "vcpus": {label: end.cpus.format()},
        "address": server_address,
        "warnings": _tcg(end),
    }
    before = uptime(end.agent)
    with serving(end.endpoint(), str(check_address(server_address).ip), port=SOCKPERF_PORT):
        yield facts
    facts["guest_uptime_s"] = {label: [round(before, 2), round(uptime(end.agent), 2)]}


def client_running(
    conn: Any,
    client: str,
    server_ip: str,
    *,
    client_address: str,
    label: str | None = None,
    server_label: str = "server",
    seconds: int = DEFAULT_SECONDS,
    mps: int = DEFAULT_MPS,
    bucket_us: float = DEFAULT_BUCKET_US,
) -> dict[str, Any]:
    """The client half of a round trip across hosts: sockperf ping-pong from running guest
    ``client`` (on the address its user gave) to ``server_ip``, already served elsewhere."""
    label = label or client
    end = _running_end(conn, client, label, client_address)
    before = uptime(end.agent)
    report = ping_pong(
        end.endpoint(),
        server_label,
        server_ip,
        port=SOCKPERF_PORT,
        seconds=seconds,
        mps=mps,
        bucket_us=bucket_us,
        warnings=_tcg(end),
    )
    return dict(to_jsonable(report)) | {
        "method": "guest-agent",
        "accel": end.accel,
        "vcpus": {label: end.cpus.format()},
        "guest_uptime_s": {label: [round(before, 2), round(uptime(end.agent), 2)]},
    }
