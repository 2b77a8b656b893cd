"""The switch's threads put right: PMDs real-time without passing it on, strays sent home.

:func:`sweep` gives every PMD thread of ovs-vswitchd the configured policy and
priority together with ``SCHED_RESET_ON_FORK``, so that a thread a PMD
creates starts as a normal task instead of inheriting a real-time policy on
a CPU whose equal-priority poll loop never yields it (seen here: OVS's main
thread waited forever on such a child, and the switch wedged). Threads that
are not PMDs (OVS's own and a PMD's unnamed children, see
:func:`rtkvm.dataplane.threads.split_pmds`) but may run outside the
housekeeping CPUs get a normal policy and the housekeeping CPUs.

The kernel calls sit behind :class:`ThreadScheduler` so that the decisions
are tested without touching a thread. This module reads threads only
through what it is given and never judges them (threads.py does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.threads import ThreadInfo, split_pmds

POLICY_CONSTANTS = {"fifo": os.SCHED_FIFO, "rr": os.SCHED_RR, "other": os.SCHED_OTHER}
RESET_ON_FORK = os.SCHED_RESET_ON_FORK


class ThreadScheduler(Protocol):
    """The kernel's scheduling calls for one thread id (raise ProcessLookupError when gone)."""

    def get(self, tid: int) -> tuple[int, int]:
        """(policy with its flags, priority)."""

    def set(self, tid: int, policy: int, priority: int) -> None: ...

    def pin(self, tid: int, cpus: CpuSet) -> None: ...


class KernelScheduler:
    """The real calls: sched_getscheduler/sched_setscheduler/sched_setaffinity."""

    def get(self, tid: int) -> tuple[int, int]:
        return os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority

    def set(self, tid: int, policy: int, priority: int) -> None:
        os.sched_setscheduler(tid, policy, os.sched_param(priority))

    def pin(self, tid: int, cpus: CpuSet) -> None:
        os.sched_setaffinity(tid, set(cpus))


@dataclass(frozen=True)
class Sweep:
    """What one sweep found and changed."""

    pmds: tuple[ThreadInfo, ...]
    changed: tuple[ThreadInfo, ...]
    """PMDs whose policy, priority or reset-on-fork flag was not yet right."""
    rehomed: tuple[ThreadInfo, ...]
    """Other threads moved to the housekeeping CPUs (and a normal policy)."""


def wanted(policy: str) -> int:
    """The policy value a PMD gets: a real-time one carries SCHED_RESET_ON_FORK."""
    value = POLICY_CONSTANTS[policy]
    return value | RESET_ON_FORK if value in (os.SCHED_FIFO, os.SCHED_RR) else value


def sweep(
    threads: tuple[ThreadInfo, ...],
    sched: ThreadScheduler,
    *,
    policy: str,
    priority: int,
    housekeeping: CpuSet | None,
) -> Sweep:
    """Set what is not yet right; threads that exit meanwhile are skipped.

    PermissionError propagates (the caller says why the kernel refused).
    With ``housekeeping`` None, no other thread is touched.
    """
    pmds, children = split_pmds(threads)
    want = wanted(policy)
    prio = priority if want != os.SCHED_OTHER else 0
    changed = []
    for t in pmds:
        try:
            if sched.get(t.tid) != (want, prio):
                sched.set(t.tid, want, prio)
                changed.append(t)
        except ProcessLookupError:
            continue
    rehomed = []
    if housekeeping is not None:
        others = [t for t in threads if not t.is_pmd] + list(children)
        for t in others:
            if t.cpus_allowed <= housekeeping and t.policy == "other":
                continue
            try:
                if t.policy != "other":
                    sched.set(t.tid, os.SCHED_OTHER, 0)
                if not t.cpus_allowed <= housekeeping:
                    sched.pin(t.tid, housekeeping)
            except ProcessLookupError:
                continue
            rehomed.append(t)
    return Sweep(pmds, tuple(changed), tuple(rehomed))
