"""Run a sockperf ping-pong between two endpoints and return an RttReport.

An endpoint is where a command runs: a network namespace on this host (tests,
the outside peer behind an uplink) or a running guest (rtkvm.guest.agentrtt
implements ``Endpoint`` over its guest agent). Everything goes through the
three methods: the client's full log is read back with ``read`` and removed
with ``rm`` on the endpoint itself, and readiness is probed with ``ss`` where
the endpoint has it (busybox guests may not: then a fixed wait). The server is
started, the client runs for a bounded time, the server is always stopped.
This module must not parse output (rtt.py) or create namespaces (netns.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import Protocol

from rtkvm.errors import MeasureError
from rtkvm.net.rtt import (
    DEFAULT_BUCKET_US,
    DEFAULT_MPS,
    DEFAULT_MSG_SIZE,
    DEFAULT_SECONDS,
    RttReport,
    build_report,
    parse_full_log,
    parse_summary,
)

SOCKPERF = "sockperf"


class ServerHandle(Protocol):
    """A command running in the background on an endpoint (subprocess.Popen fits)."""

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class Endpoint(Protocol):
    """Where sockperf runs: ``start`` a server in the background, ``run`` a command to the end."""

    name: str

    def start(self, args: Sequence[str]) -> ServerHandle: ...

    def run(self, args: Sequence[str], *, timeout: float) -> str: ...

    def read(self, path: str, *, timeout: float) -> str: ...


class NetnsEndpoint:
    """Commands run inside a network namespace with ``ip netns exec``."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.name = f"netns {netns}"

    def _wrap(self, args: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *args]

    def start(self, args: Sequence[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self._wrap(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def run(self, args: Sequence[str], *, timeout: float) -> str:
        try:
            done = subprocess.run(
                self._wrap(args), capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise MeasureError(f"{args[0]} in {self.name} ran past {timeout:g} s") from None
        if done.returncode != 0:
            raise MeasureError(
                f"{' '.join(args[:2])} in {self.name} failed: "
                f"{(done.stderr or done.stdout).strip()[-400:]}"
            )
        return done.stdout + done.stderr

    def read(self, path: str, *, timeout: float) -> str:
        return self.run(["cat", path], timeout=timeout)


def server_args(ip: str, port: int) -> list[str]:
    return [SOCKPERF, "server", "-i", ip, "-p", str(port)]


def check_run(*, seconds: int, mps: int, msg_size: int) -> None:
    """Refuse a ping-pong sockperf cannot run, before anything is started."""
    if not 1 <= seconds <= 3600:
        raise MeasureError(f"duration {seconds} s is outside 1..3600")
    if not 1 <= mps <= 1_000_000:
        raise MeasureError(f"message rate {mps}/s is outside 1..1000000")
    if not 14 <= msg_size <= 65000:
        raise MeasureError(f"message size {msg_size} is outside 14..65000 (sockperf's minimum)")


def client_args(
    ip: str, port: int, *, seconds: int, mps: int, msg_size: int, full_log: str
) -> list[str]:
    """A UDP ping-pong at a fixed message rate, reporting round trips (not half)."""
    check_run(seconds=seconds, mps=mps, msg_size=msg_size)
    return [
        SOCKPERF, "ping-pong", "-i", ip, "-p", str(port), "-t", str(seconds),
        f"--mps={mps}", "-m", str(msg_size), "--full-rtt", "--full-log", full_log,
    ]  # fmt: skip


def _wait_listening(server: Endpoint, proc: ServerHandle, port: int, limit: float = 10.0) -> None:
    """Wait until the server's UDP port is bound, so no ping is sent into the void."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stream = getattr(proc, "stderr", None)
            err = stream.read().decode(errors="replace") if stream else ""
            raise MeasureError(f"sockperf server in {server.name} exited: {err.strip()[-300:]}")
        try:
            bound = f":{port}" in server.run(["ss", "-Hlun", f"sport = :{port}"], timeout=5)
        except MeasureError:  # no ss on this endpoint: give the server a fixed head start
            time.sleep(1.0)
            return
        if bound:
            return
        time.sleep(0.1)
    raise MeasureError(f"sockperf server in {server.name} did not bind UDP {port} in {limit:g} s")


def measure(
    client: Endpoint,
    server: Endpoint,
    server_ip: str,
    *,
    port: int = 11111,
    seconds: int = DEFAULT_SECONDS,
    mps: int = DEFAULT_MPS,
    msg_size: int = DEFAULT_MSG_SIZE,
    bucket_us: float = DEFAULT_BUCKET_US,
    warnings: Sequence[str] = (),
) -> RttReport:
    """Round trip from ``client`` to ``server_ip`` served by ``server``."""
    check_run(seconds=seconds, mps=mps, msg_size=msg_size)  # before a server is started
    with serving(server, server_ip, port=port):
        return ping_pong(
            client, server.name, server_ip, port=port, seconds=seconds, mps=mps,
            msg_size=msg_size, bucket_us=bucket_us, warnings=warnings,
        )  # fmt: skip


@contextlib.contextmanager
def serving(server: Endpoint, server_ip: str, *, port: int = 11111) -> Iterator[ServerHandle]:
    """The server half: a sockperf server on ``server`` that listens on ``server_ip``
    while the block runs (the client may be on another host), always stopped after."""
    proc = server.start(server_args(server_ip, port))
    try:
        _wait_listening(server, proc, port)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def ping_pong(
    client: Endpoint,
    server_name: str,
    server_ip: str,
    *,
    port: int = 11111,
    seconds: int = DEFAULT_SECONDS,
    mps: int = DEFAULT_MPS,
    msg_size: int = DEFAULT_MSG_SIZE,
    bucket_us: float = DEFAULT_BUCKET_US,
    warnings: Sequence[str] = (),
) -> RttReport:
    """The client half: ping-pong a server that is already listening (here or in a guest)."""
    log = f"/tmp/rtkvm-rtt-{os.getpid()}-{port}.csv"
    args = client_args(server_ip, port, seconds=seconds, mps=mps, msg_size=msg_size, full_log=log)
    try:
        output = client.run(args, timeout=seconds + 30)
        summary = parse_summary(output)
        samples = parse_full_log(client.read(log, timeout=30))
    finally:
        with contextlib.suppress(MeasureError):
            client.run(["rm", "-f", log], timeout=10)
    path = f"{client.name} -> {server_name} ({server_ip})"
    return build_report(path, summary, samples, bucket_us=bucket_us, warnings=warnings)
