"""Thread verification on fake /proc trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.domain.xml import CpuTune, VcpuPin, VcpuSched
from rtkvm.errors import HostReadError
from rtkvm.findings import Status
from rtkvm.guest.verify import parse_stat_sched, read_threads, verify_threads
from rtkvm.hostfs import HostFS

from .conftest import AS_DESIGNED, stat_line, write_threads

TUNE = CpuTune(
    vcpupins=(VcpuPin(0, CpuSet([0])), VcpuPin(1, CpuSet([1]))),
    emulatorpin=CpuSet([0]),
    vcpuscheds=(VcpuSched(CpuSet([1]), "fifo", 50),),
)


def _report(tmp_path: Path, threads: list[tuple[int, str, str, int, str]]):  # type: ignore[no-untyped-def]
    write_threads(tmp_path, 42, threads)
    return verify_threads("g", read_threads(HostFS(tmp_path), 42), TUNE, 2)


def test_as_designed_passes(tmp_path: Path) -> None:
    report = _report(tmp_path, AS_DESIGNED)
    assert report.ok
    assert {f.id for f in report.findings} == {
        "guest.vcpu0.sched",
        "guest.vcpu0.affinity",
        "guest.vcpu1.sched",
        "guest.vcpu1.affinity",
        "guest.emulator.affinity",
    }
    assert report.notes == ("vCPU threads run under TCG",)


def test_rt_vcpu_without_fifo_and_unpinned_is_reported(tmp_path: Path) -> None:
    threads = [*AS_DESIGNED[:3], (103, "CPU 1/KVM", "other", 0, "0-1")]
    report = _report(tmp_path, threads)
    failed = {f.id: f for f in report.findings if f.status is Status.FAIL}
    assert set(failed) == {"guest.vcpu1.sched", "guest.vcpu1.affinity"}
    assert failed["guest.vcpu1.sched"].observed == "other/0"
    assert failed["guest.vcpu1.sched"].expected == "fifo/50"
    assert failed["guest.vcpu1.affinity"].observed == "0-1"
    assert not report.ok


def test_emulator_thread_on_the_rt_cpu_is_reported(tmp_path: Path) -> None:
    threads = [AS_DESIGNED[0], (101, "worker", "other", 0, "0-1"), *AS_DESIGNED[2:]]
    report = _report(tmp_path, threads)
    (bad,) = [f for f in report.findings if f.status is Status.FAIL]
    assert bad.id == "guest.emulator.affinity"
    assert bad.observed == {"101 worker": "0-1"}


def test_missing_vcpu_thread(tmp_path: Path) -> None:
    report = _report(tmp_path, AS_DESIGNED[:3])
    assert any(f.id == "guest.vcpu1.thread" and f.status is Status.FAIL for f in report.findings)


@pytest.mark.parametrize(("policy", "prio"), [("fifo", 50), ("rr", 1), ("other", 0)])
def test_stat_fields_40_and_41(policy: str, prio: int) -> None:
    line = stat_line(7, "CPU 1/KVM (odd) name", prio, policy)
    assert parse_stat_sched(line, "x") == (policy, prio)


def test_short_stat_is_an_error() -> None:
    with pytest.raises(HostReadError):
        parse_stat_sched("7 (x) S 1 2 3", "x")
