"""The values the tuning engine passes around: planned changes and verify results.

A :class:`Change` is one planned mutation of the host (a file's value, a
directory, a thread's scheduling, a task's cgroup) with its before and after
values and the ``why`` of the setting it implements. A :class:`Check` is
one verify result. This module holds values only: it must not read or
write the host.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["file", "config", "mkdir", "sched", "affinity", "cgroup"]
"""file: a kernel file written in place (/proc, /sys); config: a regular file
replaced atomically (/etc); mkdir: a directory (cgroup); sched/affinity: a
thread's policy+priority or CPUs; cgroup: a task's cpuset group."""


class Status(enum.StrEnum):
    OK = "ok"
    DRIFT = "drift"
    PENDING_REBOOT = "pending_reboot"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class Change:
    """One planned mutation; ``in_effect`` when the live value already is the target."""

    setting: str
    """Stable id of the setting: ``plugin:key`` (``sysctl:kernel.timer_migration``)."""
    target: str
    """What is changed: a host path, ``pid 12 (ksoftirqd/0)``, ..."""
    kind: Kind
    before: str | None
    """Live value (None: the file or directory does not exist yet)."""
    after: str
    why: str
    in_effect: bool
    persistent: bool = False
    """Survives a reboot (boot loader, modprobe.d, irqbalance config): journaled to /var/lib."""
    pid: int | None = None
    cgroup_mount: str | None = None
    """For kind cgroup: the hierarchy's mount point; ``before``/``after`` are group paths."""
    controller: str = ""
    """For kind cgroup: ``cpuset`` on cgroup v1, ``""`` on cgroup v2."""
    unsupported: str | None = None
    """Why this host cannot take the setting (file absent, no cpufreq, ...)."""
    reboot: bool = False
    """Takes effect only after a reboot or module reload (judged by verify, not here)."""
    then_run: tuple[str, ...] = ()
    """Command to run after the write and again after rolling it back (update-grub)."""

    @property
    def needed(self) -> bool:
        return self.unsupported is None and not self.in_effect


@dataclass(frozen=True)
class Check:
    """One verify result, with the expected value computed the way apply computes it."""

    setting: str
    target: str
    status: Status
    expected: str
    actual: str
    why: str
    note: str = ""


@dataclass(frozen=True)
class Shortfall:
    """Written, but the kernel gave less than asked (hugepages on fragmented memory)."""

    text: str


@dataclass
class ApplyResult:
    """What apply did: changes written, changes skipped as in effect, notes for the operator."""

    written: list[Change] = field(default_factory=list)
    unchanged: int = 0
    refused: list[str] = field(default_factory=list)
    """Changes the kernel refused and that are normal to refuse (an IRQ that cannot move)."""
    short: list[str] = field(default_factory=list)
    """Changes written but only partly granted: the host is not as planned (verify: drift)."""
    notes: list[str] = field(default_factory=list)
