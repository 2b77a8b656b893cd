"""Boot guests that use their NIC, and measure round trips from a guest.

The guest image runs what its kernel command line asks (guest.netcmd), so a
networked run here is: redefine a shut-off guest with extra command line
words, start it, wait for the console marker, and on the way out stop it and
restore its definition (:func:`booted_with`). On top of that:

- :func:`serving`: a guest booted with a sockperf server on its address;
- :func:`rtt_client`: a sockperf ping-pong client in a guest against a server
  that is already up; :func:`rtt_from_guest` puts both together, the server
  in another guest or in an :class:`Endpoint` (a network namespace behind an
  uplink). Statistics and histogram come from net.rtt, from the client's
  summary and full log on the console. Guests created without an address
  (the agent's) get one for the run (``address`` / ``client_address`` /
  ``server_address``, ADDR/PREFIX).
- :func:`ping_from_guest`: one bounded ping from a guest (isolation checks).

This module must not design domains, plug NICs into the switch, or parse
sockperf output itself.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from rtkvm.errors import GuestError, MeasureError
from rtkvm.guest import console, lifecycle
from rtkvm.guest.netcmd import GuestNetRun, check_address, check_ip
from rtkvm.guest.run import boot_and_wait_ready
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
from rtkvm.net.rttrun import Endpoint, client_args, server_args

GUEST_FULL_LOG = "/tmp/rtkvm-rtt.csv"
"""Where the client in the guest writes every sample (the guest's own tmpfs root)."""
SOCKPERF_PORT = 11111
"""sockperf's default port: the guest's server (started by /init) listens there."""


@dataclass(frozen=True)
class Booted:
    """A guest booted for a networked run: its console log and where this boot starts."""

    name: str
    log: Path
    offset: int
    dom: Any

    def wait(self, marker: str, timeout: float) -> str:
        text, _ = console.wait_for(
            self.log,
            marker,
            offset=self.offset,
            timeout=timeout,
            alive=lambda: bool(self.dom.isActive()),
        )
        return text


@contextlib.contextmanager
def booted_with(conn: Any, name: str, run: GuestNetRun, *, timeout: float) -> Iterator[Booted]:
    """Boot a shut-off guest with ``run`` on its command line; stop and restore it on exit.

    The guest must have been created with its address (``rtkvm.ip``) or
    ``run`` must give one; without an address nothing can reach it.
    """
    dom = lifecycle.domain(conn, name)
    if dom.isActive():
        raise GuestError(f"guest {name!r} is running: stop it first, a networked run boots it")
    original = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    base = lifecycle.cmdline_of(original)
    if run.address is None and "rtkvm.ip=" not in base:
        raise GuestError(
            f"guest {name!r} has no address (no rtkvm.ip= on its command line): create it "
            "with --ip ADDR/PREFIX"
        )
    lifecycle.redefine(conn, lifecycle.with_cmdline(original, f"{base} {run.words()}".strip()))
    try:
        _, log, offset = boot_and_wait_ready(conn, name, timeout)
        booted = Booted(name, log, offset, dom)
        text = booted.wait(console.NET, timeout)
        failed = console.marker_line(text, console.NET_FAILED)
        if failed is not None:
            raise GuestError(f"guest {name!r} could not set up eth0: {failed}")
        yield booted
    finally:
        lifecycle.stop(conn, name)
        lifecycle.redefine(conn, original)


@contextlib.contextmanager
def serving(
    conn: Any, guest: str, ip: str, *, timeout: float = 120.0, address: str | None = None
) -> Iterator[Booted]:
    """Guest ``guest`` booted with a sockperf server bound to ``ip`` (its own address).

    ``address`` (ADDR/PREFIX, its address being ``ip``) is set on the guest's eth0 for
    this boot; without it the guest must have been created with its address.
    """
    _check_same(address, ip, guest)
    run = GuestNetRun(address=address, sockperf_server=check_ip(ip))
    with booted_with(conn, guest, run, timeout=timeout) as b:
        text = b.wait(console.SOCKPERF_SERVER, timeout)
        status = console.marker_line(text, console.SOCKPERF_SERVER)
        if status != "rc=0":
            raise MeasureError(f"the sockperf server in guest {guest!r} did not bind ({status})")
        yield b


def rtt_client(
    conn: Any,
    client: str,
    server_ip: str,
    server_name: str,
    *,
    seconds: int = DEFAULT_SECONDS,
    mps: int = DEFAULT_MPS,
    msg_size: int = DEFAULT_MSG_SIZE,
    bucket_us: float = DEFAULT_BUCKET_US,
    timeout: float = 120.0,
    warnings: Sequence[str] = (),
    address: str | None = None,
) -> RttReport:
    """Boot guest ``client``, ping-pong ``server_ip`` (already serving), stop it, report.

    ``address`` (ADDR/PREFIX) is set on the client's eth0 for this boot; without it the
    guest must have been created with its address.
    """
    argv = client_args(
        check_ip(server_ip),
        SOCKPERF_PORT,
        seconds=seconds,
        mps=mps,
        msg_size=msg_size,
        full_log=GUEST_FULL_LOG,
    )
    run = GuestNetRun(address=address, wait_for=server_ip, sockperf_client=tuple(argv))
    with booted_with(conn, client, run, timeout=timeout) as booted:
        text = booted.wait(console.WAIT, timeout)
        if console.marker_line(text, console.WAIT) != "ok":
            raise MeasureError(f"guest {client!r} cannot reach {server_ip} (no ping answer)")
        text = booted.wait(console.SOCKPERF_END, timeout + seconds)
        output, rc = console.marked_block(text, "SOCKPERF")
        if rc != 0:
            raise MeasureError(f"sockperf in guest {client!r} exited {rc}: {output.strip()[-300:]}")
        text = booted.wait(console.FULLLOG_END, timeout)
        log, _ = console.marked_block(text, "FULLLOG")
    path = f"guest {client} -> {server_name} ({server_ip})"
    return build_report(
        path, parse_summary(output), parse_full_log(log), bucket_us=bucket_us, warnings=warnings
    )


def rtt_from_guest(
    conn: Any,
    client: str,
    server_ip: str,
    *,
    server_guest: str | None = None,
    server: Endpoint | None = None,
    seconds: int = DEFAULT_SECONDS,
    mps: int = DEFAULT_MPS,
    bucket_us: float = DEFAULT_BUCKET_US,
    timeout: float = 120.0,
    warnings: Sequence[str] = (),
    client_address: str | None = None,
    server_address: str | None = None,
) -> RttReport:
    """Round trip from guest ``client`` to a server in another guest or in an endpoint.

    ``client_address`` and ``server_address`` (ADDR/PREFIX; the server's is
    ``server_ip``) are set on the guests' eth0 for this run, for guests created
    without an address; an endpoint has its own and takes no ``server_address``.
    """
    if (server_guest is None) == (server is None):
        raise GuestError("give exactly one server: another guest or an endpoint (namespace)")
    if server is not None and server_address is not None:
        raise GuestError(
            f"server {server.name} is an endpoint with its own address: "
            "server_address is for a server guest"
        )
    opts: dict[str, Any] = {
        "seconds": seconds, "mps": mps, "bucket_us": bucket_us,
        "timeout": timeout, "warnings": warnings, "address": client_address,
    }  # fmt: skip
    if server_guest is not None:
        if server_guest == client:
            raise GuestError(f"guest {client!r} cannot be its own sockperf server")
        with serving(conn, server_guest, server_ip, timeout=timeout, address=server_address):
            return rtt_client(conn, client, server_ip, f"guest {server_guest}", **opts)
    assert server is not None
    proc = server.start(server_args(check_ip(server_ip), SOCKPERF_PORT))
    try:
        return rtt_client(conn, client, server_ip, server.name, **opts)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _check_same(address: str | None, ip: str, guest: str) -> None:
    """The server's run address must be the address it serves on."""
    if address is None:
        return
    given = str(check_address(address).ip)
    if given != check_ip(ip):
        raise GuestError(
            f"guest {guest!r} would get address {address} but serve on {ip}: "
            "give the same address to both"
        )


@dataclass(frozen=True)
class PingResult:
    guest: str
    target: str
    rc: int
    output: str

    @property
    def reached(self) -> bool:
        return self.rc == 0


def ping_from_guest(
    conn: Any, guest: str, target: str, *, first_reach: str | None = None, timeout: float = 120.0
) -> PingResult:
    """Boot ``guest``, optionally wait until it reaches ``first_reach`` (a positive control),
    then ping ``target`` three times; stop and restore the guest."""
    run = GuestNetRun(wait_for=first_reach, ping=check_ip(target))
    with booted_with(conn, guest, run, timeout=timeout) as booted:
        if first_reach is not None:
            text = booted.wait(console.WAIT, timeout)
            if console.marker_line(text, console.WAIT) != "ok":
                raise GuestError(
                    f"guest {guest!r} cannot reach {first_reach} either: its NIC does not "
                    "work, so an unreachable target proves nothing"
                )
        text = booted.wait(console.PING_END, timeout)
        output, rc = console.marked_block(text, "PING")
    return PingResult(guest, target, rc if rc is not None else -1, output)
