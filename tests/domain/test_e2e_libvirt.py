"""End to end: libvirt 9.0 on this machine accepts every design, and one boots as designed.

Needs root and a running libvirtd (``rtkvm`` starts it; see the runtime). Each
golden design is defined under a unique name and undefined again. Then a
one-vCPU TCG guest designed for this host's real topology (housekeeping CPU 0,
RT vCPU on CPU 1, emulator shared on CPU 0; an empty disk, so it sits in the
firmware) is started, and /proc must show its vCPU thread at SCHED_FIFO 50 on
CPU 1 and every other QEMU thread on CPU 0. Everything is destroyed in
``finally``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.domain.design import GuestBoot, HostQuirks, design_guest
from rtkvm.domain.spec import VCPU_PRIORITY_DEFAULT, RtGuestSpec
from rtkvm.domain.xml import parse_domain
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.testing.guests import make_plan

pytestmark = pytest.mark.e2e

GOLDEN = Path(__file__).parent / "golden"
TAG = f"rtkvm-e2e-design-{os.getpid()}"


@pytest.fixture()
def conn() -> Iterator[Any]:
    if os.geteuid() != 0:
        pytest.skip("needs root: defines and starts libvirt domains")
    libvirt = pytest.importorskip("libvirt")
    try:
        connection = libvirt.open("qemu:///system")
    except libvirt.libvirtError as exc:
        pytest.skip(f"libvirtd is not running here ({exc}); rtkvm's runtime starts it")
    try:
        yield connection
    finally:
        connection.close()


@pytest.mark.parametrize("golden", sorted(p.name for p in GOLDEN.glob("rt_*.xml")))
def test_libvirt_defines_every_golden_design(conn: Any, golden: str) -> None:
    domain = parse_domain((GOLDEN / golden).read_text())
    name = f"{TAG}-{golden.removesuffix('.xml')}"
    xml = parse_domain(domain.to_xml()).to_xml().replace(f"<name>{domain.name}<", f"<name>{name}<")
    xml = xml.replace(f"<uuid>{domain.uuid}</uuid>", "")
    defined = conn.defineXML(xml)
    try:
        assert defined.name() == name
        stored = parse_domain(defined.XMLDesc(0))
        assert stored.cputune == domain.cputune
        assert stored.memory_backing == domain.memory_backing
        assert stored.numatune == domain.numatune
        assert stored.qemu_override == domain.qemu_override
    finally:
        defined.undefine()


def _threads(pid: int) -> list[tuple[str, int, int, CpuSet]]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        comm = (task / "comm").read_text().strip()
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        priority, policy = int(fields[37]), int(fields[38])
        allowed = next(
            line.split(":", 1)[1]
            for line in (task / "status").read_text().splitlines()
            if line.startswith("Cpus_allowed_list:")
        )
        found.append((comm, policy, priority, CpuSet.parse(allowed)))
    return found


def test_a_designed_guest_runs_as_designed(conn: Any, tmp_path: Path) -> None:
    topology = read_topology(HostFS("/"))
    if len(topology.online) < 2:
        pytest.skip("needs 2 CPUs: one housekeeping, one for the RT vCPU")
    cpus = list(topology.online)
    plan = make_plan(str(cpus[0]), str(cpus[1]))
    spec = RtGuestSpec(vcpus=1, memory_mib=128, emulator_threads_policy="share", page_size="4k")
    disk = tmp_path / "empty.raw"
    disk.write_bytes(b"\0" * (1 << 20))
    boot = GuestBoot(
        name=f"{TAG}-boot", disk=str(disk), serial_log=str(tmp_path / "serial.log"), accel="tcg"
    )
    design = design_guest(
        spec, plan, topology, boot, host=HostQuirks(locked_memory=False), allow_unlocked_memory=True
    )
    dom = conn.createXML(design.xml, 0)
    try:
        pid = int(Path(f"/run/libvirt/qemu/{boot.name}.pid").read_text().strip())
        deadline = time.monotonic() + 10
        vcpus: list[tuple[str, int, int, CpuSet]] = []
        while time.monotonic() < deadline and not vcpus:
            vcpus = [t for t in _threads(pid) if t[0].startswith("CPU 0/")]
            time.sleep(0.1)
        assert vcpus, "no vCPU thread appeared"
        _, policy, priority, allowed = vcpus[0]
        assert (policy, priority, allowed) == (1, VCPU_PRIORITY_DEFAULT, CpuSet([cpus[1]]))
        others = [t for t in _threads(pid) if not t[0].startswith("CPU ")]
        assert others and all(t[3] == CpuSet([cpus[0]]) for t in others), others
    finally:
        dom.destroy()


def test_a_guests_serial_line_is_a_socket_qemu_serves_and_still_logged(
    conn: Any, tmp_path: Path
) -> None:
    """What the agent's console relay connects to (``rtkvm.agent.console``)."""
    import socket

    from rtkvm.guest.lifecycle import serial_log

    topology = read_topology(HostFS("/"))
    cpus = list(topology.online)
    plan = make_plan(str(cpus[0]), str(cpus[-1]))
    spec = RtGuestSpec(vcpus=1, memory_mib=128, emulator_threads_policy="share", page_size="4k")
    disk = tmp_path / "empty.raw"
    disk.write_bytes(b"\0" * (1 << 20))
    sock, log = tmp_path / "console.sock", tmp_path / "serial.log"
    boot = GuestBoot(
        name=f"{TAG}-console",
        disk=str(disk),
        serial_log=str(log),
        console_socket=str(sock),
        accel="tcg",
    )
    design = design_guest(
        spec, plan, topology, boot, host=HostQuirks(locked_memory=False), allow_unlocked_memory=True
    )
    dom = conn.createXML(design.xml, 0)
    try:
        live = dom.XMLDesc(0)
        assert serial_log(live) == str(log)
        [serial] = parse_domain(live).devices.serials
        assert (serial.type, serial.mode, serial.path) == ("unix", "bind", str(sock))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(sock))  # QEMU listens: the relay's side of the line
            client.sendall(b"\r")
        assert log.exists()  # virtlogd keeps writing the serial log beside it
    finally:
        dom.destroy()
