"""Round trips between Nova servers on rtkvm's networks, with rtkvm's probe guest.

A Nova server's kernel command line is its Glance image's ``os_command_line``, so each
role of a networked probe (a sockperf server on its address; a client that waits for the
server, pings a peer and runs the ping-pong) is an image of its own: :func:`run_image`
makes an ``ami`` that shares the probe's kernel and ramdisk and adds the run's words
(:class:`rtkvm.guest.netcmd.GuestNetRun`). :func:`round_trip` boots the server probe,
then the client probe, on one network through
:func:`rtkvm.openstack.servers.create_server` (unaddressed Neutron ports), reads the
client's console through Nova (which keeps only its last 100 KiB: the client prints its
samples as a histogram, a line per distinct round trip, not one per sample), and builds
the :class:`rtkvm.net.rtt.RttReport`; :func:`ping_from` boots one probe that pings an
address and says whether it answered (isolation and uplink checks). Every server and
image made here is deleted on the way out, on failure too.

Addresses come from the caller: rtkvm never invents an IP plan. This module must not
parse sockperf's output itself (net.rtt does) nor change networks.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rtkvm.errors import GuestError, MeasureError
from rtkvm.guest import console
from rtkvm.guest.netcmd import GuestNetRun, check_address
from rtkvm.guest.netrun import GUEST_FULL_LOG, SOCKPERF_PORT
from rtkvm.net.rtt import (
    DEFAULT_BUCKET_US,
    DEFAULT_MSG_SIZE,
    RttReport,
    build_report,
    parse_summary,
    parse_value_counts,
)
from rtkvm.net.rttrun import client_args
from rtkvm.openstack.images import DISK_BYTES, ImageAPI, find_image
from rtkvm.openstack.measure import console_text
from rtkvm.openstack.servers import MadeServer, create_server, delete_server

ROLE_PREFIX = "rtkvm-netprobe-"
"""Images made here are named ROLE_PREFIX + a digest of their command line."""
NOVA_CONSOLE_BYTES = 100 * 1024
"""Nova's libvirt driver returns at most the last 100 KiB of a console (MAX_CONSOLE_BYTES)."""
SAMPLE_BYTES = 44
"""What one sample takes in sockperf's full log, with room: a row is
``2566, 4.993621287, 4.994397550, 776.263`` and a newline, longer for late sequence
numbers and millisecond round trips."""
MAX_SAMPLES = 1_000_000
"""The most samples a run may ask for: the probe holds sockperf's full log in its RAM (its
root is an initramfs) until it prints it as a histogram, ~44 MB for a million samples."""


@dataclass(frozen=True)
class ProbeBase:
    """rtkvm's probe image in Glance, whose kernel and ramdisk every role shares."""

    kernel_id: str
    ramdisk_id: str
    cmdline: str
    """Its command line without the cyclictest run (the role adds its own words)."""


def probe_base(api: ImageAPI, name: str) -> ProbeBase:
    image = find_image(api, name)
    if image is None or not image.get("kernel_id"):
        raise GuestError(
            f"Glance has no probe image {name!r} with a kernel: run `rtkvm openstack image upload`"
        )
    words = [w for w in str(image.get("os_command_line", "")).split()]
    kept = _without_quoted(words, "rtkvm.cyclictest=")
    return ProbeBase(image["kernel_id"], image["ramdisk_id"], " ".join(kept))


def _without_quoted(words: list[str], prefix: str) -> list[str]:
    """The words without ``prefix="..."`` (which may span several words)."""
    out, skipping = [], False
    for w in words:
        if skipping:
            skipping = not w.endswith('"')
            continue
        if w.startswith(prefix):
            skipping = w.count('"') == 1
            continue
        out.append(w)
    return out


def run_image(api: ImageAPI, base: ProbeBase, run: GuestNetRun) -> tuple[str, str]:
    """(image id, name) of an ami that boots the probe with ``run``'s words."""
    cmdline = f"{base.cmdline} {run.words()}".strip()
    name = ROLE_PREFIX + hashlib.sha256(cmdline.encode()).hexdigest()[:12]
    body = {
        "name": name, "disk_format": "ami", "container_format": "ami", "visibility": "public",
        "rtkvm": "netprobe", "kernel_id": base.kernel_id, "ramdisk_id": base.ramdisk_id,
        "os_command_line": cmdline,
    }  # fmt: skip
    made = api.call("image", "POST", "/v2/images", json=body, ok=(201,), what=f"create {name}")
    api.upload("image", f"/v2/images/{made['id']}/file", bytes(DISK_BYTES), what=f"upload {name}")
    return str(made["id"]), name


@contextlib.contextmanager
def probe_server(
    session: ImageAPI, name: str, base: ProbeBase, run: GuestNetRun, *, flavor: str,
    network: str, timeout: float, apart_from: Sequence[str] = (),
) -> Iterator[MadeServer]:  # fmt: skip
    """A probe server booted with ``run`` on ``network`` (on another host than the servers
    ``apart_from``); it and its image deleted on exit."""
    image_id, _ = run_image(session, base, run)
    try:
        made = create_server(
            session, name, flavor=flavor, image=image_id, networks=[network], timeout=timeout,
            apart_from=apart_from,
        )  # fmt: skip
        try:
            yield made
        finally:
            delete_server(session, made.server_id, timeout=timeout)
    finally:
        session.call("image", "DELETE", f"/v2/images/{image_id}", ok=(204, 404),
                     what=f"delete image {image_id}")  # fmt: skip


def wait_console(session: ImageAPI, server: MadeServer, marker: str, timeout: float) -> str:
    """The server's console from its last boot once it has a line starting with ``marker``.

    A console longer than Nova keeps has lost its start, boot line included: all of what is
    left then came after that boot (a probe server is never rebooted)."""
    deadline = time.monotonic() + timeout
    while True:
        text = console_text(session, server.server_id)
        boot = text.rfind(console.READY)
        truncated = len(text.encode()) >= NOVA_CONSOLE_BYTES - 4096
        since = text[boot:] if boot >= 0 else (text if truncated else "")
        failed = console.marker_line(since, console.NET_FAILED)
        if failed is not None:
            raise GuestError(f"server {server.name} could not set up eth0: {failed}")
        if console.has_line(since, marker):
            return since
        if time.monotonic() > deadline:
            tail = "\n".join(text.strip().splitlines()[-5:])
            raise GuestError(
                f"server {server.name} printed no {marker} within {timeout:.0f} s; its console "
                f"ends with:\n{tail}"
            )
        time.sleep(1.0)


def check_samples(seconds: int, mps: int) -> None:
    """The full log must fit in the probe's memory (the histogram fits Nova's console)."""
    if seconds * mps > MAX_SAMPLES:
        raise MeasureError(
            f"{seconds} s at {mps} messages/s is {seconds * mps} samples; the probe keeps them "
            f"in its memory (~{SAMPLE_BYTES} bytes each): keep seconds x mps at most "
            f"{MAX_SAMPLES}"
        )


def client_result(text: str, name: str) -> tuple[str, list[float], float]:
    """(sockperf's output, the round trips in µs, their rounding unit) from the client
    probe's console since its boot, which ends with its histogram.

    MeasureError when sockperf failed, when the console lost the start of the run (Nova
    keeps its last 100 KiB only) or when the histogram does not hold every observation."""
    if "RTKVM-SOCKPERF-BEGIN" not in text:
        raise MeasureError(
            f"the round trips of {name} overran what Nova keeps of a console (the last "
            f"{NOVA_CONSOLE_BYTES // 1024} KiB): the run's start is gone; ask for fewer "
            "seconds x mps"
        )
    output, rc = console.marked_block(text, "SOCKPERF")
    if rc != 0:
        raise MeasureError(f"sockperf in {name} exited {rc}: {output[-300:]}")
    body, rc = console.marked_block(text, "RTTHIST")
    if rc != 0:
        raise MeasureError(f"{name} could not print its round trips as a histogram (rc={rc})")
    samples, unit = parse_value_counts(body)
    counted = parse_summary(output).observations
    if len(samples) != counted:
        raise MeasureError(
            f"{name}'s histogram holds {len(samples)} round trips but sockperf counted "
            f"{counted}: the console lost part of it"
        )
    return output, samples, unit


def round_trip(
    session: ImageAPI,
    *,
    network: str,
    flavor: str,
    probe_image: str,
    server_address: str,
    client_address: str,
    names: tuple[str, str] = ("rtkvm-rtt-server", "rtkvm-rtt-client"),
    seconds: int = 3,
    mps: int = 500,
    bucket_us: float = DEFAULT_BUCKET_US,
    timeout: float = 300.0,
    warnings: Sequence[str] = (),
    during: Callable[[list[MadeServer]], None] | None = None,
    apart: bool = False,
) -> RttReport:
    """sockperf ping-pong between two probe servers on ``network``, through Nova and Neutron.

    ``apart``: the client must land on another host than the server (Nova refuses the
    boot, NoValidHost, when no other host can take it). ``during`` is called with both
    servers once the run is read, before they are deleted (to look at them on the host)."""
    check_samples(seconds, mps)
    server_ip = str(check_address(server_address).ip)
    check_address(client_address)
    base = probe_base(session, probe_image)
    serve = GuestNetRun(address=server_address, sockperf_server=server_ip)
    argv = client_args(server_ip, SOCKPERF_PORT, seconds=seconds, mps=mps,
                       msg_size=DEFAULT_MSG_SIZE, full_log=GUEST_FULL_LOG)  # fmt: skip
    ask = GuestNetRun(
        address=client_address, wait_for=server_ip, sockperf_client=tuple(argv),
        rtt_histogram=True,
    )  # fmt: skip
    opts = {"flavor": flavor, "network": network, "timeout": timeout}
    with probe_server(session, names[0], base, serve, **opts) as srv:  # type: ignore[arg-type]
        text = wait_console(session, srv, console.SOCKPERF_SERVER, timeout)
        status = console.marker_line(text, console.SOCKPERF_SERVER)
        if status != "rc=0":
            raise MeasureError(f"the sockperf server in {srv.name} did not bind ({status})")
        apart_from = (srv.server_id,) if apart else ()
        with probe_server(
            session,
            names[1],
            base,
            ask,
            apart_from=apart_from,
            **opts,  # type: ignore[arg-type]
        ) as cli:
            hosts = (srv.host, cli.host)
            text = wait_console(session, cli, console.WAIT, timeout)
            if console.marker_line(text, console.WAIT) != "ok":
                raise MeasureError(f"{cli.name} cannot reach {server_ip} on {network}")
            text = wait_console(session, cli, console.RTTHIST_END, timeout + seconds)
            output, samples, unit = client_result(text, cli.name)
            if during is not None:
                during([srv, cli])
    path = (
        f"Nova server {names[1]} on {hosts[1] or '?'} -> {names[0]} on {hosts[0] or '?'} "
        f"({server_ip}) over {network}"
    )
    return build_report(
        path, parse_summary(output), samples, bucket_us=bucket_us, warnings=warnings,
        resolution_us=unit,
    )  # fmt: skip


@dataclass(frozen=True)
class PingResult:
    server: str
    network: str
    target: str
    answered: bool
    output: str


def ping_from(
    session: ImageAPI,
    *,
    name: str,
    network: str,
    flavor: str,
    probe_image: str,
    address: str,
    target: str,
    reach_first: str | None = None,
    timeout: float = 300.0,
) -> PingResult:
    """Boot one probe on ``network`` with ``address`` that pings ``target`` three times.

    With ``reach_first`` the probe first pings that address until it answers (at most 60
    tries) and the result is refused if it never does: a target that does not answer then
    means isolation, not a dead NIC."""
    base = probe_base(session, probe_image)
    run = GuestNetRun(address=address, wait_for=reach_first, ping=target)
    with probe_server(session, name, base, run, flavor=flavor, network=network,
                      timeout=timeout) as made:  # fmt: skip
        text = wait_console(session, made, console.PING_END, timeout + 90)
        if reach_first is not None and console.marker_line(text, console.WAIT) != "ok":
            raise MeasureError(f"{name} on {network} never reached {reach_first}")
        output, rc = console.marked_block(text, "PING")
    return PingResult(name, network, target, rc == 0, output.strip())
