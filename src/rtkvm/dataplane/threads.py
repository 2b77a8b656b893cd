"""The switch's threads as the kernel sees them, and the check that they are placed right.

Reads /proc/PID/task/TID/{comm,stat,status} through HostFS (so tests run on
fake trees), parses them with pure functions, and judges: every PMD thread
runs only on the dataplane CPUs with the chosen policy and priority; every
other thread of ovs-vswitchd only on housekeeping CPUs. The verdict is a
findings Report. This module must not change any thread (sched.py does).

A thread is a PMD by its name, and a name is not proof: a thread that a PMD
creates starts with the PMD's name (and its CPU and, without
SCHED_RESET_ON_FORK, its real-time policy) until it names itself, which it
cannot do while an equal-priority poll loop holds its only CPU. Of threads
sharing a PMD name, the first started is the PMD; the others are its
unnamed children (:func:`split_pmds`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rtkvm.cpuset import CpuSet
from rtkvm.errors import HostReadError
from rtkvm.findings import Finding, Report, Severity, Status
from rtkvm.hostfs import HostFS

POLICY_NAMES = {0: "other", 1: "fifo", 2: "rr", 3: "batch", 5: "idle", 6: "deadline"}
PMD_COMM_PREFIX = "pmd"


@dataclass(frozen=True)
class ThreadInfo:
    tid: int
    comm: str
    cpus_allowed: CpuSet
    policy: str
    rt_priority: int
    last_cpu: int
    start_ticks: int = 0
    """When the thread started, in clock ticks after boot (/proc stat field 22)."""

    @property
    def is_pmd(self) -> bool:
        """OVS names its polling threads 'pmd-c<core>/id:<n>' (truncated to 15 chars)."""
        return self.comm.startswith(PMD_COMM_PREFIX)


def parse_stat(text: str) -> tuple[int, int, str]:
    """(last CPU, rt_priority, policy name) from /proc/.../stat.

    The comm field may contain spaces and parentheses, so fields are counted
    after the last ')': there, field 39 (processor) is index 36.
    """
    processor, rt_priority, policy, _ = parse_stat_start(text)
    return processor, rt_priority, policy


def parse_stat_start(text: str) -> tuple[int, int, str, int]:
    """:func:`parse_stat` and the start time (field 22, index 19 after the ')')."""
    end = text.rfind(")")
    if end < 0:
        raise ValueError("no ')' after the command name")
    fields = text[end + 1 :].split()
    if len(fields) < 39:
        raise ValueError(f"only {len(fields) + 2} fields, need 41")
    processor, rt_priority, policy = int(fields[36]), int(fields[37]), int(fields[38])
    return processor, rt_priority, POLICY_NAMES.get(policy, f"policy-{policy}"), int(fields[19])


def parse_cpus_allowed(status: str) -> CpuSet:
    for line in status.splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return CpuSet.parse(line.split(":", 1)[1])
    raise ValueError("no Cpus_allowed_list line")


def read_threads(fs: HostFS, pid: int) -> tuple[ThreadInfo, ...]:
    """Every thread of ``pid``; raises HostReadError if the process is gone or unreadable."""
    base = f"/proc/{pid}/task"
    threads = []
    for name in fs.listdir(base):
        if not name.isdigit():
            continue
        tid = int(name)
        try:
            comm = fs.read(f"{base}/{name}/comm").strip()
            stat = fs.read(f"{base}/{name}/stat")
            status = fs.read(f"{base}/{name}/status")
        except HostReadError:
            continue  # the thread exited between listing and reading
        try:
            last_cpu, prio, policy, started = parse_stat_start(stat)
            allowed = parse_cpus_allowed(status)
        except ValueError as exc:
            raise HostReadError(f"{base}/{name}", f"unparsable: {exc}") from None
        threads.append(ThreadInfo(tid, comm, allowed, policy, prio, last_cpu, started))
    return tuple(threads)


def split_pmds(
    threads: tuple[ThreadInfo, ...],
) -> tuple[tuple[ThreadInfo, ...], tuple[ThreadInfo, ...]]:
    """(the PMD threads, the threads that only carry a PMD's name).

    OVS names each PMD uniquely ('pmd-c01/id:8'); a second thread of that
    name is a child the PMD created that has not named itself yet. The PMD is
    the one that started first (the lower tid on a tie).
    """
    first: dict[str, ThreadInfo] = {}
    for t in sorted((t for t in threads if t.is_pmd), key=lambda t: (t.start_ticks, t.tid)):
        first.setdefault(t.comm, t)
    pmds = tuple(t for t in threads if t.is_pmd and first[t.comm] is t)
    children = tuple(t for t in threads if t.is_pmd and first[t.comm] is not t)
    return pmds, children


def check_threads(
    threads: tuple[ThreadInfo, ...],
    *,
    pmd_cpus: CpuSet,
    housekeeping: CpuSet,
    policy: str,
    priority: int,
    subject: str = "ovs-vswitchd threads",
) -> Report:
    """Findings: PMD count, PMD affinity and scheduling, other threads on housekeeping.

    A PMD's unnamed child counts as an other thread: on its parent's CPU it is a stray.
    """
    pmds, children = split_pmds(threads)
    others = [t for t in threads if not t.is_pmd] + list(children)
    findings: list[Finding] = []
    findings.append(
        Finding(
            "dataplane.pmd.count",
            Severity.ERROR,
            Status.PASS if len(pmds) == len(pmd_cpus) else Status.FAIL,
            f"{len(pmds)} PMD threads for dataplane CPUs {pmd_cpus}",
            observed=len(pmds),
            expected=len(pmd_cpus),
            why="OVS starts one PMD thread per CPU of pmd-cpu-mask once a port needs polling.",
            fix="add a dpdkvhostuserclient port; check pmd-cpu-mask in other_config",
        )
    )
    for t in pmds:
        placed = t.cpus_allowed <= pmd_cpus and len(t.cpus_allowed) == 1
        placed = placed and t.last_cpu in t.cpus_allowed
        findings.append(
            Finding(
                f"dataplane.pmd.affinity.{t.tid}",
                Severity.ERROR,
                Status.PASS if placed else Status.FAIL,
                f"{t.comm} (tid {t.tid}) may run on CPUs {t.cpus_allowed}, last ran on "
                f"CPU {t.last_cpu}",
                observed=t.cpus_allowed.format(),
                expected=f"one CPU of {pmd_cpus}",
                fix="set other_config:pmd-cpu-mask to the dataplane CPUs",
            )
        )
        sched_ok = t.policy == policy and t.rt_priority == priority
        findings.append(
            Finding(
                f"dataplane.pmd.sched.{t.tid}",
                Severity.ERROR,
                Status.PASS if sched_ok else Status.FAIL,
                f"{t.comm} (tid {t.tid}) runs {t.policy} priority {t.rt_priority}",
                observed=f"{t.policy}/{t.rt_priority}",
                expected=f"{policy}/{priority}",
                fix="rtkvm net up sets it; see the pmd section of dataplane.toml",
            )
        )
    stray = [t for t in others if not t.cpus_allowed <= housekeeping]
    findings.append(
        Finding(
            "dataplane.threads.housekeeping",
            Severity.ERROR,
            Status.FAIL if stray else Status.PASS,
            (
                f"{len(others)} non-PMD threads all on housekeeping CPUs {housekeeping}"
                if not stray
                else "threads outside housekeeping: "
                + ", ".join(f"{t.comm}({t.tid})@{t.cpus_allowed}" for t in stray)
            ),
            observed=sorted({t.cpus_allowed.format() for t in others}),
            expected=housekeeping.format(),
            why="DPDK control threads inherit the start-up affinity minus the lcores.",
            fix="start ovs-vswitchd with its affinity set to the housekeeping CPUs",
        )
    )
    return Report(subject, tuple(findings), ok_verdict="in place", bad_verdict="misplaced")


def check_reset_on_fork(pmds: tuple[ThreadInfo, ...], policies: dict[int, int]) -> Finding:
    """Every real-time PMD carries SCHED_RESET_ON_FORK (``policies``: tid -> the value
    sched_getscheduler returned, flags included; a thread gone meanwhile is absent)."""
    flag = os.SCHED_RESET_ON_FORK
    missing = [t for t in pmds if t.tid in policies and not policies[t.tid] & flag]
    return Finding(
        "dataplane.pmd.reset_on_fork",
        Severity.ERROR,
        Status.FAIL if missing else Status.PASS,
        (
            "real-time PMDs pass nothing on: SCHED_RESET_ON_FORK on each"
            if not missing
            else "PMDs without SCHED_RESET_ON_FORK: "
            + ", ".join(f"{t.comm}({t.tid})" for t in missing)
        ),
        observed=len(missing),
        expected=0,
        why=(
            "A thread a PMD creates inherits its real-time policy and its one CPU; at equal "
            "priority the poll loop never lets it run, and OVS's main thread waits on it for "
            "ever (a wedged switch)."
        ),
        fix="rtkvm net sweep --rundir DIR (the node agent does it each round)",
    )
