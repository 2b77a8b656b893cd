"""PMD thread placement read from a fake /proc tree and judged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.threads import (
    check_reset_on_fork,
    check_threads,
    parse_stat,
    read_threads,
    split_pmds,
)
from rtkvm.errors import HostReadError
from rtkvm.findings import Status
from rtkvm.hostfs import HostFS

PID = 4242


def _stat(tid: int, comm: str, processor: int, rt_prio: int, policy: int) -> str:
    # Field 3 is the state, 4..38 filler, then processor (39), rt_priority (40), policy (41).
    filler = " ".join(["0"] * 35)
    return f"{tid} ({comm}) S {filler} {processor} {rt_prio} {policy} 0 0 0\n"


def _thread(root: Path, tid: int, comm: str, allowed: str, prio: int, policy: int) -> None:
    d = root / "proc" / str(PID) / "task" / str(tid)
    d.mkdir(parents=True)
    (d / "comm").write_text(comm + "\n")
    cpu = CpuSet.parse(allowed).min()
    (d / "stat").write_text(_stat(tid, comm, cpu, prio, policy))
    (d / "status").write_text(f"Name:\t{comm}\nCpus_allowed_list:\t{allowed}\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    _thread(tmp_path, PID, "ovs-vswitchd-dp", "0", 0, 0)
    _thread(tmp_path, PID + 1, "handler6", "0", 0, 0)
    _thread(tmp_path, PID + 2, "pmd-c01/id:8", "1", 1, 1)
    return tmp_path


def test_parse_stat_with_spaces_and_parens_in_comm() -> None:
    assert parse_stat(_stat(7, "a (b) c", 3, 5, 2)) == (3, 5, "rr")
    with pytest.raises(ValueError, match="fields"):
        parse_stat("7 (x) S 1 2 3")


def test_all_in_place(tree: Path) -> None:
    threads = read_threads(HostFS(tree), PID)
    assert [t.is_pmd for t in threads] == [False, False, True]
    report = check_threads(
        threads, pmd_cpus=CpuSet([1]), housekeeping=CpuSet([0]), policy="fifo", priority=1
    )
    assert report.ok, report.render_table()


def test_wrong_priority_and_stray_thread(tree: Path) -> None:
    _thread(tree, PID + 3, "eal-intr-thread", "1", 0, 0)  # DPDK control thread on the PMD CPU
    d = tree / "proc" / str(PID) / "task" / str(PID + 2)
    (d / "stat").write_text(_stat(PID + 2, "pmd-c01/id:8", 1, 0, 0))
    report = check_threads(
        read_threads(HostFS(tree), PID),
        pmd_cpus=CpuSet([1]),
        housekeeping=CpuSet([0]),
        policy="fifo",
        priority=1,
    )
    failed = {f.id for f in report.findings if f.status is Status.FAIL}
    assert failed == {f"dataplane.pmd.sched.{PID + 2}", "dataplane.threads.housekeeping"}
    assert "eal-intr-thread" in report.render_table()


def test_missing_pmd_and_gone_process(tree: Path) -> None:
    threads = [t for t in read_threads(HostFS(tree), PID) if not t.is_pmd]
    report = check_threads(
        tuple(threads), pmd_cpus=CpuSet([1]), housekeeping=CpuSet([0]), policy="fifo", priority=1
    )
    assert not report.ok
    with pytest.raises(HostReadError):
        read_threads(HostFS(tree), 999)


def _stat_started(
    tid: int, comm: str, processor: int, rt_prio: int, policy: int, start: int
) -> str:
    fields = ["0"] * 35
    fields[18] = str(start)  # field 22 (starttime) is the 20th after ')'; index 0 is the state
    return f"{tid} ({comm}) S {' '.join(fields)} {processor} {rt_prio} {policy} 0 0 0\n"


def test_a_pmds_unnamed_child_is_no_pmd_but_a_stray(tree: Path) -> None:
    # The PMD (started at tick 500) created a thread (tick 900) that starves before naming
    # itself: same name, same CPU, and without SCHED_RESET_ON_FORK the PMD's FIFO 1.
    pmd = tree / "proc" / str(PID) / "task" / str(PID + 2)
    (pmd / "stat").write_text(_stat_started(PID + 2, "pmd-c01/id:8", 1, 1, 1, 500))
    _thread(tree, PID - 100, "pmd-c01/id:8", "1", 1, 1)  # a lower tid: tids wrap
    child = tree / "proc" / str(PID) / "task" / str(PID - 100)
    (child / "stat").write_text(_stat_started(PID - 100, "pmd-c01/id:8", 1, 1, 1, 900))
    threads = read_threads(HostFS(tree), PID)
    pmds, children = split_pmds(threads)
    assert [t.tid for t in pmds] == [PID + 2] and [t.tid for t in children] == [PID - 100]
    report = check_threads(
        threads, pmd_cpus=CpuSet([1]), housekeeping=CpuSet([0]), policy="fifo", priority=1
    )
    failed = {f.id for f in report.findings if f.status is Status.FAIL}
    assert failed == {"dataplane.threads.housekeeping"}  # one PMD counted, the child a stray
    assert f"pmd-c01/id:8({PID - 100})@1" in report.render_table()


def test_reset_on_fork_is_checked_on_every_rt_pmd(tree: Path) -> None:
    pmds, _ = split_pmds(read_threads(HostFS(tree), PID))
    fifo = os.SCHED_FIFO
    good = check_reset_on_fork(pmds, {PID + 2: fifo | os.SCHED_RESET_ON_FORK})
    assert good.status is Status.PASS
    bad = check_reset_on_fork(pmds, {PID + 2: fifo})
    assert bad.status is Status.FAIL and "pmd-c01/id:8" in bad.message
    assert check_reset_on_fork(pmds, {}).status is Status.PASS  # gone meanwhile: nothing to judge
