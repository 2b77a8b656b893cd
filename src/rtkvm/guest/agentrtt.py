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

This module must not stop, start or redefine a domain, set an address in a
guest, or parse sockperf's output (rtkvm.net.rtt does).
"""

from __future__ import annotations

import io
import math
import subprocess
import time
from collections.abc import Sequence
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
from rtkvm.net.rttrun import SOCKPERF, measure
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
