"""Lifecycle calls against libvirt's test:///default driver, and the run helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.domain.spec import VCPU_PRIORITY_DEFAULT
from rtkvm.errors import GuestError
from rtkvm.findings import Status
from rtkvm.guest import lifecycle
from rtkvm.guest.create import Image, default_spec, plan_guest
from rtkvm.guest.run import (
    CyclictestParams,
    cputune_of,
    guest_cmdline,
    rt_and_housekeeping,
    verify_guest,
)
from rtkvm.hostfs import HostFS
from rtkvm.runtime.quirks import Quirk
from rtkvm.testing.guests import make_plan, make_topology

from .conftest import AS_DESIGNED, write_threads

TEST_URI = "test:///default"
NO_LOCK = Quirk("no_cap_sys_resource", True, "CapEff=...", "cannot lock.", "Handled.")


def _design_xml(name: str, tmp_path: Path, accel: str = "tcg") -> str:
    created = plan_guest(
        name,
        default_spec(name),
        make_plan("0", "1"),
        make_topology(cores_per_node=2),
        Image(tmp_path / "vmlinuz", tmp_path / "initramfs.cpio.gz"),
        [NO_LOCK],
        accel=accel,  # type: ignore[arg-type]
        guest_dir=tmp_path,
    )
    return created.xml


@pytest.fixture
def conn() -> Iterator[Any]:
    with lifecycle.connect(TEST_URI) as c:
        yield c


@pytest.fixture
def name(conn: Any) -> Iterator[str]:
    guest = f"rtk-{uuid.uuid4().hex[:8]}"
    yield guest
    for dom in conn.listAllDomains(0):
        if dom.name() == guest:
            if dom.isActive():
                dom.destroy()
            dom.undefine()


def test_define_tags_the_guest_and_list_shows_only_rtkvm_guests(
    conn: Any, name: str, tmp_path: Path
) -> None:
    lifecycle.define(conn, _design_xml(name, tmp_path))
    mine = {g.name: g for g in lifecycle.list_guests(conn)}
    assert name in mine
    assert "test" not in mine  # the test driver's own domain is not rtkvm's
    assert "test" in {g.name for g in lifecycle.list_guests(conn, everything=True)}
    g = mine[name]
    assert (g.state, g.vcpus, g.memory_mib, g.accel) == ("shut off", 2, 256, "tcg")
    assert g.serial_log == str(tmp_path / f"{name}.serial.log")


def test_define_twice_is_refused(conn: Any, name: str, tmp_path: Path) -> None:
    lifecycle.define(conn, _design_xml(name, tmp_path))
    with pytest.raises(GuestError, match="already exists"):
        lifecycle.define(conn, _design_xml(name, tmp_path))


def test_start_stop_delete_removes_domain_and_serial_log(
    conn: Any, name: str, tmp_path: Path
) -> None:
    lifecycle.define(conn, _design_xml(name, tmp_path))
    lifecycle.start(conn, name)
    assert lifecycle.domain(conn, name).isActive()
    lifecycle.start(conn, name)  # idempotent
    lifecycle.stop(conn, name)
    assert not lifecycle.domain(conn, name).isActive()
    log = tmp_path / f"{name}.serial.log"
    log.write_text("RTKVM-READY\n")
    lifecycle.start(conn, name)
    removed = lifecycle.delete(conn, name)
    assert removed == [f"domain {name}", str(log)]
    assert not log.exists()
    with pytest.raises(GuestError, match="no guest named"):
        lifecycle.domain(conn, name)


def test_delete_refuses_foreign_domains(conn: Any) -> None:
    with pytest.raises(GuestError, match="not created by rtkvm"):
        lifecycle.delete(conn, "test")
    assert lifecycle.domain(conn, "test") is not None


def test_unreachable_libvirt_says_what_to_do() -> None:
    with (
        pytest.raises(GuestError, match="rtkvm runtime up"),
        lifecycle.connect("qemu+unix:///system?socket=/nonexistent/sock"),
    ):
        pass


def test_cmdline_edit_round_trip(tmp_path: Path) -> None:
    xml = _design_xml("g", tmp_path)
    assert lifecycle.cmdline_of(xml) == guest_cmdline(CpuSet([1]), accel="tcg")
    changed = lifecycle.with_cmdline(xml, 'x rtkvm.cyclictest="-q -h 4"')
    assert lifecycle.cmdline_of(changed) == 'x rtkvm.cyclictest="-q -h 4"'


def test_design_for_the_two_cpu_plan(tmp_path: Path) -> None:
    """The plan of the brief: vCPU 0 on pCPU 0 with the emulator, vCPU 1 FIFO on pCPU 1."""
    tune, vcpus, dtype = cputune_of(_design_xml("g", tmp_path))
    assert dtype == "qemu" and vcpus == 2
    assert {p.vcpu: p.cpuset.format() for p in tune.vcpupins} == {0: "0", 1: "1"}
    assert tune.emulatorpin == CpuSet([0])
    rt, hk = rt_and_housekeeping(tune, vcpus)
    assert (rt, hk) == (CpuSet([1]), CpuSet([0]))
    assert "<locked/>" not in _design_xml("g", tmp_path)  # no CAP_SYS_RESOURCE: not locked


def test_cyclictest_args_use_rt_vcpus_and_no_removed_flags() -> None:
    args = CyclictestParams(loops=2000, interval_us=1000, buckets=400).args(
        CpuSet([1]), CpuSet([0])
    )
    tokens = args.split()
    assert "-n" not in tokens
    assert tokens[tokens.index("-a") + 1] == "1"
    assert tokens[tokens.index("--mainaffinity") + 1] == "0"
    assert {"-m", "-q", "-h", "-l", "-i"} <= set(tokens)
    with pytest.raises(GuestError):
        CyclictestParams().args(CpuSet(), CpuSet([0]))


def test_verify_guest_reads_the_live_cputune_and_fake_proc(
    conn: Any, name: str, tmp_path: Path
) -> None:
    lifecycle.define(conn, _design_xml(name, tmp_path))
    with pytest.raises(GuestError, match="not running"):
        verify_guest(conn, HostFS(tmp_path), name, pid_dir="/run/q")
    lifecycle.start(conn, name)
    (tmp_path / "run/q").mkdir(parents=True)
    (tmp_path / f"run/q/{name}.pid").write_text("42\n")
    # the RT vCPU thread at the priority the design gives by default
    threads = [*AS_DESIGNED[:3], (103, "CPU 1/TCG", "fifo", VCPU_PRIORITY_DEFAULT, "1")]
    write_threads(tmp_path, 42, threads)
    report = verify_guest(conn, HostFS(tmp_path), name, pid_dir="/run/q")
    assert report.ok and all(f.status is Status.PASS for f in report.findings)
    # and one priority off is a difference
    (tmp_path / "proc").rename(tmp_path / "proc.ok")
    write_threads(tmp_path, 42, [*AS_DESIGNED[:3], (103, "CPU 1/TCG", "fifo", 1, "1")])
    report = verify_guest(conn, HostFS(tmp_path), name, pid_dir="/run/q")
    assert [f.id for f in report.findings if f.status is Status.FAIL] == ["guest.vcpu1.sched"]


def test_only_an_emulated_guest_turns_the_unhandled_irq_detector_off() -> None:
    from rtkvm.cpuset import CpuSet
    from rtkvm.guest.run import guest_cmdline

    assert "noirqdebug" in guest_cmdline(CpuSet([1]), accel="tcg").split()
    assert "noirqdebug" not in guest_cmdline(CpuSet([1]), accel="kvm").split()
