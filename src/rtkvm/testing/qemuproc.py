"""Fake /proc trees of QEMU processes: their threads' names, scheduling and CPUs.

:func:`write_threads` writes ``proc/PID/task/TID/{comm,stat,status}`` under a
root the way the kernel shows them (``stat`` fields 40 and 41 are the RT
priority and policy, proc(5)), for tests of thread verification and of the
enforcement of a Nova guest's priorities (``SimulatedProcessControl`` edits
the same files). Nothing here may be imported by production code.
"""

from __future__ import annotations

from pathlib import Path

from rtkvm.cpuset import CpuSet

POLICY = {"other": 0, "fifo": 1, "rr": 2}

Thread = tuple[int, str, str, int, str]
"""(tid, comm, policy, rt_priority, cpu list)."""


def stat_line(tid: int, comm: str, rt_priority: int, policy: str) -> str:
    # fields 4..39 are placeholders; field 40 is rt_priority, 41 policy (proc(5))
    middle = " ".join(["0"] * 36)
    return f"{tid} ({comm}) S {middle} {rt_priority} {POLICY[policy]} 0 0 0\n"


def write_threads(root: Path, pid: int, threads: list[Thread]) -> None:
    for tid, comm, policy, prio, cpus in threads:
        task = root / f"proc/{pid}/task/{tid}"
        task.mkdir(parents=True)
        (task / "comm").write_text(comm + "\n")
        (task / "stat").write_text(stat_line(tid, comm, prio, policy))
        mask = format(sum(1 << c for c in CpuSet.parse(cpus)), "x")
        (task / "status").write_text(
            f"Name:\t{comm}\nCpus_allowed:\t{mask}\nCpus_allowed_list:\t{cpus}\n"
        )
