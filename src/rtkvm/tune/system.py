"""The tuning engine's seams to the host beyond files: threads, cgroups, commands.

Thread scheduling and CPU affinity are changed with syscalls, not files, so
they sit behind :class:`ProcessControl` (real: ``os.sched_setscheduler``,
``os.sched_setaffinity``, a write to ``cgroup.procs``; fake: rtkvm.tune.fakes
edits a fake /proc tree). Commands (update-grub, restarting irqbalance) sit
behind :class:`CommandRunner`. Reading the current state is the same for both:
:func:`read_tasks` parses /proc through HostFS.

This module must not decide what to change: plugins do. It must not journal:
the engine's writer does, before calling it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Protocol

from rtkvm.cpuset import CpuSet
from rtkvm.errors import CpuListError, HostWriteError, TuneError
from rtkvm.hostfs import HostFS, Unknown

POLICIES = {"other": 0, "fifo": 1, "rr": 2, "batch": 3, "idle": 5, "deadline": 6}
POLICY_NAMES = {v: k for k, v in POLICIES.items()}
PF_KTHREAD = 0x00200000
PF_NO_SETAFFINITY = 0x04000000
"""Set on threads the kernel bound to CPUs (per-CPU kthreads): they cannot be moved."""


@dataclass(frozen=True)
class Task:
    """One thread as /proc shows it."""

    pid: int
    """Thread group (process) id."""
    tid: int
    comm: str
    kthread: bool
    bound: bool
    """The kernel forbids changing its CPUs (PF_NO_SETAFFINITY)."""
    policy: int
    priority: int
    cpus: CpuSet | Unknown

    @property
    def sched(self) -> str:
        return format_sched(self.policy, self.priority)


def format_sched(policy: int, priority: int) -> str:
    """``fifo:2``, ``other:0``: how schedules are shown and journaled."""
    return f"{POLICY_NAMES.get(policy, str(policy))}:{priority}"


def parse_sched(text: str) -> tuple[int, int]:
    name, _, prio = text.partition(":")
    if name not in POLICIES or not prio.isdigit():
        raise TuneError(f"bad schedule {text!r}: expected POLICY:PRIORITY such as fifo:2")
    return POLICIES[name], int(prio)


def parse_stat(text: str) -> tuple[str, int, int, int]:
    """(comm, flags, rt_priority, policy) from /proc/PID/stat; raises ValueError."""
    open_paren, close_paren = text.find("("), text.rfind(")")
    if open_paren < 0 or close_paren < open_paren:
        raise ValueError("no (comm) in stat")
    fields = text[close_paren + 1 :].split()
    if len(fields) < 39:
        raise ValueError(f"stat has {len(fields) + 2} fields, expected at least 41")
    return text[open_paren + 1 : close_paren], int(fields[6]), int(fields[37]), int(fields[38])


def parse_cpus_allowed(status: str, source: str) -> CpuSet | Unknown:
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == "Cpus_allowed_list":
            try:
                return CpuSet.parse(value.strip())
            except CpuListError as exc:
                return Unknown(source, str(exc))
    return Unknown(source, "no Cpus_allowed_list line")


def parse_proc_cgroup(text: str, controller: str) -> str | None:
    """The cgroup path of a task for a v1 controller, or v2 (``controller=""``)."""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        names = parts[1].split(",") if parts[1] else []
        if (controller and controller in names) or (not controller and parts[0] == "0"):
            return parts[2]
    return None


def read_tasks(fs: HostFS) -> list[Task]:
    """Every thread in /proc; threads that vanish or do not parse are skipped."""
    tasks: list[Task] = []
    for name in fs.listdir("/proc"):
        if not name.isdigit():
            continue
        tids = fs.listdir_maybe(f"/proc/{name}/task")
        for tid in tids if isinstance(tids, list) else [name]:
            if not tid.isdigit():
                continue
            base = f"/proc/{name}/task/{tid}" if isinstance(tids, list) else f"/proc/{name}"
            stat = fs.read_maybe(f"{base}/stat")
            if isinstance(stat, Unknown):
                continue
            try:
                comm, flags, prio, policy = parse_stat(stat)
            except ValueError:
                continue
            status = fs.read_maybe(f"{base}/status")
            cpus = status if isinstance(status, Unknown) else parse_cpus_allowed(status, base)
            tasks.append(
                Task(
                    int(name),
                    int(tid),
                    comm,
                    bool(flags & PF_KTHREAD),
                    bool(flags & PF_NO_SETAFFINITY),
                    policy,
                    prio,
                    cpus,
                )
            )
    return tasks


class ProcessControl(Protocol):
    """Changes a thread's scheduling, CPUs and cgroup. Raises HostWriteError on refusal."""

    def set_sched(self, tid: int, policy: int, priority: int) -> None: ...

    def set_affinity(self, tid: int, cpus: CpuSet) -> None: ...

    def attach(self, pid: int, mount: str, group: str, controller: str) -> None:
        """Move a process into cgroup ``group`` (``/rtkvm-housekeeping``) of a hierarchy."""
        ...


class RealProcessControl:
    """ProcessControl for the real host: syscalls, and cgroup.procs through HostFS."""

    def __init__(self, fs: HostFS) -> None:
        self.fs = fs

    def set_sched(self, tid: int, policy: int, priority: int) -> None:
        try:
            os.sched_setscheduler(tid, policy, os.sched_param(priority))
        except OSError as exc:
            raise HostWriteError(f"/proc/{tid} (scheduler)", os.strerror(exc.errno or 1)) from None

    def set_affinity(self, tid: int, cpus: CpuSet) -> None:
        try:
            os.sched_setaffinity(tid, set(cpus))
        except OSError as exc:
            raise HostWriteError(f"/proc/{tid} (affinity)", os.strerror(exc.errno or 1)) from None

    def attach(self, pid: int, mount: str, group: str, controller: str) -> None:
        self.fs.write(f"{mount}{group.rstrip('/')}/cgroup.procs", f"{pid}\n")


class CommandRunner(Protocol):
    def run(self, argv: tuple[str, ...]) -> None:
        """Run a command; raise TuneError saying what failed."""
        ...


class SubprocessRunner:
    """CommandRunner for the real host."""

    def run(self, argv: tuple[str, ...]) -> None:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TuneError(f"cannot run {' '.join(argv)}: {exc}") from None
        if done.returncode != 0:
            raise TuneError(
                f"{' '.join(argv)} failed with status {done.returncode}: "
                f"{(done.stderr or done.stdout).strip()[:300]}"
            )


class RecordingRunner:
    """CommandRunner that runs nothing and remembers what it was asked (fake roots, tests)."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, ...]] = []

    def run(self, argv: tuple[str, ...]) -> None:
        self.commands.append(argv)
