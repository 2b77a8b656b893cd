"""cyclictest inside a Nova-booted RT server, read from Nova's console, saved like rtkvm's own.

A server booted from rtkvm's probe image (:mod:`rtkvm.openstack.images`) runs
cyclictest on its RT vCPUs at every boot and prints the result between
rtkvm's console markers. :func:`measure_server` finds the server in Nova,
checks that it runs on this host, optionally hard-reboots it through Nova for
a fresh run, waits (bounded) until Nova's console output holds a finished
run, parses it, and verifies the guest's threads against its flavor at that
moment without changing them. The result has the shape of ``rtkvm guest
measure --save`` (``guest``, ``accel``, ``cyclictest``, ``latency``,
``verify``...), so ``rtkvm report build`` puts it beside rtkvm's own servers.
This module must not create or delete servers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lxml import etree

from rtkvm.domain.audit import AuditHost
from rtkvm.errors import GuestError, HostWriteError, InputError, OpenStackError
from rtkvm.guest import console
from rtkvm.hostfs import HostFS
from rtkvm.measure import cyclictest
from rtkvm.openstack.enforce import enforce
from rtkvm.openstack.novaguest import parse_nova_guest
from rtkvm.openstack.servers import MICROVERSION, servers_named
from rtkvm.openstack.session import CloudSession, RestAPI
from rtkvm.wire.uuids import is_uuid


class ReadOnlyControl:
    """A ProcessControl that changes nothing: a measurement verifies, it does not fix."""

    def set_sched(self, tid: int, policy: int, priority: int) -> None:
        raise HostWriteError(f"/proc/{tid} (scheduler)", "not changed while measuring")

    def set_affinity(self, tid: int, cpus: Any) -> None:
        raise HostWriteError(f"/proc/{tid} (affinity)", "not changed while measuring")

    def attach(self, pid: int, mount: str, group: str, controller: str) -> None:
        raise HostWriteError(f"/proc/{pid} (cgroup)", "not changed while measuring")


@dataclass(frozen=True)
class ServerRef:
    server_id: str
    name: str
    host: str
    status: str


def find_server(session: CloudSession, name_or_id: str) -> ServerRef:
    if is_uuid(name_or_id):
        one = session.call(
            "compute", "GET", f"/servers/{name_or_id}", microversion=MICROVERSION,
            what=f"read server {name_or_id}",
        )  # fmt: skip
        found = [one["server"]]
    else:
        found = servers_named(session, name_or_id)
    if len(found) != 1:
        raise InputError(
            f"{len(found)} Nova servers are named {name_or_id!r}: give the server's id"
            if found
            else f"Nova has no server {name_or_id!r}"
        )
    s = found[0]
    return ServerRef(s["id"], s["name"], s.get("OS-EXT-SRV-ATTR:host") or "", s["status"])


def console_text(session: RestAPI, server_id: str) -> str:
    answer = session.call(
        "compute", "POST", f"/servers/{server_id}/action",
        json={"os-getConsoleOutput": {"length": None}}, microversion=MICROVERSION,
        what=f"read the console of server {server_id}",
    )  # fmt: skip
    return str(answer["output"])


def hard_reboot(session: CloudSession, server_id: str, timeout: float) -> None:
    session.call(
        "compute", "POST", f"/servers/{server_id}/action", json={"reboot": {"type": "HARD"}},
        microversion=MICROVERSION, ok=(202,), what=f"reboot server {server_id}",
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        server = session.call(
            "compute", "GET", f"/servers/{server_id}", microversion=MICROVERSION,
            what="read the server",
        )["server"]  # fmt: skip
        if server["status"] == "ACTIVE" and not server.get("OS-EXT-STS:task_state"):
            return
        if server["status"] == "ERROR" or time.monotonic() > deadline:
            raise OpenStackError(
                f"server {server_id} did not come back from its reboot "
                f"(status {server['status']}, task {server.get('OS-EXT-STS:task_state')})"
            )
        time.sleep(1.0)


def wait_for_run(session: CloudSession, server_id: str, timeout: float) -> str:
    """Nova's console output once it holds a finished cyclictest run (after the last boot)."""
    deadline = time.monotonic() + timeout
    while True:
        text = console_text(session, server_id)
        last_boot = text.rfind(console.READY)
        if last_boot >= 0 and console.has_line(text[last_boot:], console.END):
            return text[last_boot:]
        if time.monotonic() > deadline:
            tail = "\n".join(text.strip().splitlines()[-5:])
            raise GuestError(
                f"no finished cyclictest on server {server_id}'s console within {timeout:.0f} s: "
                "was it booted from rtkvm's probe image (rtkvm openstack image upload)? "
                f"Console ends with:\n{tail}"
            )
        time.sleep(1.0)


def measure_server(
    session: CloudSession,
    name_or_id: str,
    *,
    this_host: str,
    fs: HostFS,
    host: AuditHost,
    quirks: set[str],
    fresh: bool = False,
    timeout: float = 180.0,
    uri: str = "qemu:///system",
) -> dict[str, Any]:
    from rtkvm.guest.lifecycle import connect

    server = find_server(session, name_or_id)
    if server.status != "ACTIVE":
        raise InputError(f"server {server.name} is {server.status}: it must be ACTIVE")
    if server.host != this_host:
        raise InputError(
            f"server {server.name} runs on {server.host or 'no host'}, not on {this_host}: "
            "run the measurement on its compute host"
        )
    started = time.monotonic()
    if fresh:
        hard_reboot(session, server.server_id, timeout)
    text = wait_for_run(session, server.server_id, timeout)
    seconds = time.monotonic() - started
    raw, rc = console.cyclictest_block(text)
    if rc != 0:
        raise GuestError(f"cyclictest exited {rc} in server {server.name}: {raw.strip()[-300:]}")
    ready = console.parse_ready(text, 0.0)
    with connect(uri) as conn:
        dom = conn.lookupByUUIDString(server.server_id)
        xml = dom.XMLDesc(0)
        domain_name = dom.name()
    guest = parse_nova_guest(xml)
    if guest is None:
        raise GuestError(f"domain {domain_name} has no Nova metadata")
    pid_text = fs.read_line(f"/var/run/libvirt/qemu/{domain_name}.pid")
    if not isinstance(pid_text, str) or not pid_text.isdigit():
        raise GuestError(f"server {server.name} ({domain_name}) has no QEMU process")
    verdict = enforce(
        guest, xml, int(pid_text), fs=fs, control=ReadOnlyControl(), host=host, quirks=quirks
    )
    dtype = etree.fromstring(xml.encode()).get("type", "")
    args = console.marker_line(text, console.BEGIN) or ""
    return {
        "guest": f"nova:{server.name}",
        "server_id": server.server_id,
        "host": server.host,
        "accel": "kvm" if dtype == "kvm" else "tcg",
        "boot_seconds": None,
        "run_seconds": round(seconds, 2),
        "guest_realtime": ready.realtime,
        "cyclictest": args.removeprefix("args=").strip(),
        "latency": cyclictest.parse(raw).to_dict(),
        "verify": verdict.verify.to_dict() if verdict.verify else None,
        "rt_verdict": verdict.summary,
    }
