"""The host-wide SCHED_FIFO scale of an rtkvm compute node, in one place.

Every real-time priority rtkvm sets or checks comes from here: the guest layer
(vCPU priorities in flavors and domains), the tuning engine (kernel threads,
polling threads) and the data plane (OVS PMD threads). From low to high:

====  ==========================================================================
1     the kernel's default FIFO level (ktimers and rcuc start there on RT kernels);
      the data plane's polling threads (OVS PMDs): they never sleep, so every
      other RT thread on their CPU must be able to preempt them
2-4   per-CPU service threads, set by the tuning profile: ksoftirqd 2, ktimers 3,
      rcuc 4 (tuned's realtime-virtual-host levels). Above the default, so they
      beat ordinary FIFO-1 threads, and below every RT vCPU, so a vCPU is never
      preempted by softirq, timer-softirq or RCU callback work on its own CPU.
5-49  the RT band: RT vCPUs (default 40).
50    threaded IRQ handlers (PREEMPT_RT's default, not changed by rtkvm). An IRQ
      that cannot be moved off an RT CPU must still be served, so its thread
      must preempt the vCPU: the RT band stays below 50.
99    migration/stop-machine and the watchdogs.
====  ==========================================================================

The price of putting ksoftirqd, ktimers and rcuc below the vCPU: a vCPU that
never sleeps (a busy-polling guest) starves them on its CPU. rtkvm makes them
idle there instead: IRQs, RCU callbacks (rcu_nocbs), the tick (nohz_full),
unbound work and timers (timer_migration=0) are moved to housekeeping CPUs,
and the RT throttling choice ``large`` leaves a bounded slice each period for
whatever remains. This module holds numbers and their meaning; it must not
set or read any priority.
"""

from __future__ import annotations

KERNEL_DEFAULT_FIFO = 1
"""Where the kernel starts its own FIFO threads (ktimers, rcuc) on RT kernels."""

KTHREAD_PRIORITIES: dict[str, int] = {"ksoftirqd": 2, "ktimers": 3, "rcuc": 4}
"""Per-CPU service threads: above the default, below the RT band."""

KTHREAD_MAX = max(KTHREAD_PRIORITIES.values())

RT_BAND_MIN = 5
RT_BAND_MAX = 49
"""RT vCPUs live in RT_BAND_MIN..RT_BAND_MAX."""

VCPU_DEFAULT = 40
"""Default vCPU priority: well above 1 (which ties with many kernel threads),
above the per-CPU service threads, and below threaded IRQ handlers."""

PMD_DEFAULT = 1
"""Priority of the data plane's polling threads: the lowest FIFO level. A PMD
never sleeps, so it must yield to every other RT thread of its CPU (the per-CPU
service threads above all), and RT throttling must stay on while PMDs are
FIFO (the data plane refuses otherwise): that is what keeps a poll loop from
starving its core."""

IRQ_THREAD = 50
"""PREEMPT_RT's default priority of threaded IRQ handlers."""

FIFO_MIN = 1
FIFO_MAX = 99
"""The range the kernel accepts for SCHED_FIFO and SCHED_RR."""


def in_rt_band(priority: int) -> bool:
    """True when ``priority`` is where RT vCPUs belong."""
    return RT_BAND_MIN <= priority <= RT_BAND_MAX


def band_problem(priority: int) -> str | None:
    """Why a vCPU priority is outside the RT band, or None."""
    if priority <= KTHREAD_MAX:
        return (
            f"priority {priority} is at or below the host's per-CPU service threads "
            f"(ksoftirqd, ktimers, rcuc at 2..{KTHREAD_MAX}), which will then preempt it; "
            f"use {RT_BAND_MIN}..{RT_BAND_MAX} (default {VCPU_DEFAULT})"
        )
    if priority > RT_BAND_MAX:
        return (
            f"priority {priority} is at or above threaded IRQ handlers ({IRQ_THREAD}), which "
            f"then cannot preempt it to serve an IRQ left on its CPU; use "
            f"{RT_BAND_MIN}..{RT_BAND_MAX} (default {VCPU_DEFAULT})"
        )
    return None
