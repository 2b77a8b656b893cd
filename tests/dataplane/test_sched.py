"""The switch's thread sweep: what it sets, what it moves, what it leaves alone."""

from __future__ import annotations

import os

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.sched import sweep, wanted
from rtkvm.dataplane.threads import ThreadInfo

FIFO_RESET = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK


class FakeScheduler:
    """The kernel's view of each thread: (policy with flags, priority) and its CPUs."""

    def __init__(self, threads: dict[int, tuple[int, int, CpuSet]], refuse: bool = False) -> None:
        self.threads = threads
        self.refuse = refuse
        self.calls: list[tuple[str, int]] = []

    def get(self, tid: int) -> tuple[int, int]:
        if tid not in self.threads:
            raise ProcessLookupError(tid)
        policy, prio, _ = self.threads[tid]
        return policy, prio

    def set(self, tid: int, policy: int, priority: int) -> None:
        if tid not in self.threads:
            raise ProcessLookupError(tid)
        if self.refuse:
            raise PermissionError(tid)
        self.calls.append(("set", tid))
        self.threads[tid] = (policy, priority, self.threads[tid][2])

    def pin(self, tid: int, cpus: CpuSet) -> None:
        if tid not in self.threads:
            raise ProcessLookupError(tid)
        self.calls.append(("pin", tid))
        self.threads[tid] = (*self.threads[tid][:2], cpus)


def _t(tid: int, comm: str, cpus: str, policy: str = "other", prio: int = 0, start: int = 0):
    return ThreadInfo(tid, comm, CpuSet.parse(cpus), policy, prio, CpuSet.parse(cpus).min(), start)


MAIN = _t(10, "ovs-vswitchd", "0")
PMD = _t(20, "pmd-c01/id:8", "1", start=100)
CHILD = _t(30, "pmd-c01/id:8", "1", "fifo", 1, start=200)  # created by the PMD, starving
STRAY = _t(40, "urcu3", "0-1")


def _kernel() -> FakeScheduler:
    return FakeScheduler({
        10: (os.SCHED_OTHER, 0, CpuSet([0])),
        20: (os.SCHED_OTHER, 0, CpuSet([1])),
        30: (os.SCHED_FIFO, 1, CpuSet([1])),
        40: (os.SCHED_OTHER, 0, CpuSet([0, 1])),
    })  # fmt: skip


def test_pmd_gets_fifo_with_reset_on_fork_and_strays_go_home() -> None:
    kernel = _kernel()
    done = sweep((MAIN, PMD, CHILD, STRAY), kernel, policy="fifo", priority=1,
                 housekeeping=CpuSet([0]))  # fmt: skip
    assert [t.tid for t in done.pmds] == [20] and [t.tid for t in done.changed] == [20]
    assert kernel.threads[20] == (FIFO_RESET, 1, CpuSet([1]))
    assert sorted(t.tid for t in done.rehomed) == [30, 40]
    assert kernel.threads[30] == (os.SCHED_OTHER, 0, CpuSet([0]))  # normal, and where it can run
    assert kernel.threads[40] == (os.SCHED_OTHER, 0, CpuSet([0]))
    assert ("set", 10) not in kernel.calls and ("pin", 10) not in kernel.calls


def test_a_second_sweep_changes_nothing() -> None:
    kernel = _kernel()
    sweep((MAIN, PMD, CHILD, STRAY), kernel, policy="fifo", priority=1, housekeeping=CpuSet([0]))
    kernel.calls.clear()
    settled = (MAIN, PMD, _t(30, "urcu4", "0"), _t(40, "urcu3", "0"))
    done = sweep(settled, kernel, policy="fifo", priority=1, housekeeping=CpuSet([0]))
    assert (done.changed, done.rehomed, kernel.calls) == ((), (), [])


def test_without_housekeeping_only_pmds_change_and_gone_threads_are_skipped() -> None:
    kernel = _kernel()
    del kernel.threads[20]  # the PMD exited between the read and the sweep
    done = sweep((MAIN, PMD, CHILD, STRAY), kernel, policy="rr", priority=2, housekeeping=None)
    assert (done.changed, done.rehomed, kernel.calls) == ((), (), [])
    assert wanted("rr") == os.SCHED_RR | os.SCHED_RESET_ON_FORK and wanted("other") == 0


def test_a_refusal_is_raised_for_the_caller_to_explain() -> None:
    kernel = FakeScheduler({20: (os.SCHED_OTHER, 0, CpuSet([1]))}, refuse=True)
    with pytest.raises(PermissionError):
        sweep((PMD,), kernel, policy="fifo", priority=1, housekeeping=CpuSet([0]))
