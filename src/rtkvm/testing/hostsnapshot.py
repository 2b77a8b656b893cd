"""A snapshot of the host state tuning may touch, its differences, and a repair.

:func:`take` reads, under a root (``/`` for the real host, a fake tree in
tests), everything a tuning profile can change:

- *knobs*: every readable file the owner may write under the kernel's tuning
  directories (sysctls, THP, KSM, hugepages, the workqueue mask, IRQ
  affinities, cpufreq, cpuidle, machinecheck); counters are read-only and so
  are left out by their mode, not by a list;
- *cgroups*: every directory of every cgroup hierarchy with its writable
  control files (not the task lists);
- *members*: which cgroups each process is in (``/proc/PID/cgroup``);
- *threads*: each thread's command, policy, RT priority and allowed CPUs;
- *config*: the boot-loader and modprobe files.

Processes and threads are keyed by id *and* start time, so a reused id is a
different thread; :func:`differences` compares only those present in both
snapshots (kernel threads come and go). :func:`repair` puts a host back to a
snapshot with plain writes and syscalls, independent of rtkvm's journal, and
says what it had to change.

This module is independent of rtkvm's tuning code on purpose: it is the
yardstick that code is measured with. It must not decide what to tune, and it
writes only in :func:`repair`.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

KNOB_TREES = (
    "/proc/sys/kernel",
    "/proc/sys/vm",
    "/sys/kernel/mm/transparent_hugepage",
    "/sys/kernel/mm/ksm",
    "/sys/kernel/mm/hugepages",
    "/sys/devices/system/node/node*/hugepages",
    "/sys/devices/virtual/workqueue",
    "/proc/irq",
    "/sys/devices/system/cpu/cpu*/cpufreq",
    "/sys/devices/system/cpu/cpu*/cpuidle",
    "/sys/devices/system/machinecheck",
)
"""Directories (globs) whose writable files are the kernel's tuning knobs."""

VOLATILE = (
    "/proc/sys/kernel/ns_last_pid",  # the last pid handed out
    "/proc/sys/kernel/random/*",  # the entropy pool's counters and uuid
    "/proc/sys/kernel/hung_task_detect_count",
    "/proc/sys/vm/drop_caches",
)
"""Writable files the kernel itself changes all the time."""

CONFIG_GLOBS = (
    "/etc/default/grub",
    "/etc/default/grub.d/*",
    "/etc/modprobe.d/*",
    "/etc/kernel/cmdline",
)
KERNEL_REBOUND = ("kworker/", "irq/")
"""Threads whose CPUs the kernel sets, not rtkvm. Workqueue workers and rescuers take the
workqueue cpumask when they next run, so after a restored mask a rescuer may show the old
CPUs for a while. An IRQ thread takes its IRQ's affinity (the requested or the effective
mask, by kernel version and interrupt controller) when that affinity is written: after a
rollback it may show the mask where it showed one CPU before, though the IRQ's
smp_affinity (a knob, compared exactly) is restored. Their policy is still compared; their
CPUs are the kernel's business."""
TASK_FILES = frozenset({"cgroup.procs", "tasks", "cgroup.threads"})
VOLATILE_CGROUP_FILES = ("cpuacct.usage*", "*.pressure", "memory.*max_usage_in_bytes", "*.failcnt")
"""Writable cgroup files that are counters (written to reset or to add a trigger)."""
MAX_DEPTH = 4

Proc = tuple[int, int]
"""(pid or tid, start time in clock ticks since boot): one thread, even if its id is reused."""


@dataclass(frozen=True)
class Thread:
    comm: str = field(compare=False)  # a kworker's name shows the work it is doing
    policy: int
    priority: int
    cpus: str


@dataclass
class Snapshot:
    knobs: dict[str, str] = field(default_factory=dict)
    cgroups: dict[str, dict[str, str]] = field(default_factory=dict)
    """cgroup directory -> its writable control files and their contents."""
    members: dict[Proc, dict[str, str]] = field(default_factory=dict)
    """process -> hierarchy (``4:cpuset``) -> its cgroup there."""
    threads: dict[Proc, Thread] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, str] = field(default_factory=dict)
    """hierarchy key (the controllers, ``cpuset`` or ``name=systemd``; ``""`` for v2) -> mount."""

    def size(self) -> dict[str, int]:
        return {
            "knobs": len(self.knobs),
            "cgroups": len(self.cgroups),
            "processes": len(self.members),
            "threads": len(self.threads),
            "config files": len(self.config),
        }


class _Root:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def path(self, host_path: str) -> Path:
        return Path(f"{self.root}{host_path}")

    def host(self, path: Path) -> str:
        return str(path)[len(self.root) :] or "/"

    def glob(self, pattern: str) -> list[Path]:
        parts = pattern.strip("/").split("/")
        found = [Path(self.root or "/")]
        for part in parts:
            nxt: list[Path] = []
            for base in found:
                if any(ch in part for ch in "*?["):
                    with contextlib.suppress(OSError):
                        nxt.extend(
                            sorted(p for p in base.iterdir() if fnmatch.fnmatch(p.name, part))
                        )
                elif (base / part).exists():
                    nxt.append(base / part)
            found = nxt
        return found

    def read(self, path: Path) -> str | None:
        try:
            return path.read_text(errors="replace")
        except OSError:
            return None


def _writable_files(top: Path, depth: int = 0) -> Iterator[Path]:
    try:
        entries = sorted(top.iterdir())
    except OSError:
        return
    for entry in entries:
        try:
            info = entry.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        if stat.S_ISDIR(info.st_mode):
            if depth < MAX_DEPTH:
                yield from _writable_files(entry, depth + 1)
        elif stat.S_ISREG(info.st_mode) and info.st_mode & stat.S_IWUSR:
            yield entry


def _volatile(host_path: str) -> bool:
    return any(fnmatch.fnmatch(host_path, pattern) for pattern in VOLATILE)


def _volatile_cgroup(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in VOLATILE_CGROUP_FILES)


def _cgroup_mounts(fs: _Root) -> dict[str, str]:
    text = fs.read(fs.path("/proc/mounts")) or ""
    mounts: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        if fields[2] == "cgroup2":
            mounts[""] = fields[1]
        elif fields[2] == "cgroup":
            names = [
                o
                for o in fields[3].split(",")
                if o not in ("rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec")
                and not o.startswith(("release_agent=", "clone_children"))
            ]
            mounts[",".join(sorted(names))] = fields[1]
    return mounts


def _hierarchy_key(line_controllers: str) -> str:
    return ",".join(sorted(line_controllers.split(","))) if line_controllers else ""


def _stat_fields(text: str) -> tuple[str, list[str]] | None:
    open_paren, close_paren = text.find("("), text.rfind(")")
    if open_paren < 0 or close_paren < open_paren:
        return None
    return text[open_paren + 1 : close_paren], text[close_paren + 1 :].split()


def _cpus_allowed(status: str) -> str:
    for line in status.splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return "?"


def take(root: str = "/") -> Snapshot:
    """Read the snapshot of the host (or the fake tree) under ``root``."""
    fs = _Root(root)
    snap = Snapshot(mounts=_cgroup_mounts(fs))
    for pattern in KNOB_TREES:
        for top in fs.glob(pattern):
            for path in _writable_files(top):
                host_path = fs.host(path)
                if _volatile(host_path):
                    continue
                text = fs.read(path)
                if text is not None:
                    snap.knobs[host_path] = text
    for mount in snap.mounts.values():
        for directory in _cgroup_dirs(fs.path(mount)):
            files = {}
            for entry in sorted(directory.iterdir()) if directory.is_dir() else []:
                if entry.name in TASK_FILES or not entry.is_file() or _volatile_cgroup(entry.name):
                    continue
                with contextlib.suppress(OSError):
                    if entry.stat().st_mode & stat.S_IWUSR:
                        text = fs.read(entry)
                        if text is not None:
                            files[entry.name] = text
            snap.cgroups[fs.host(directory)] = files
    for pattern in CONFIG_GLOBS:
        for path in fs.glob(pattern):
            if path.is_file():
                snap.config[fs.host(path)] = fs.read(path) or ""
    for proc_dir in fs.glob("/proc/*"):
        if not proc_dir.name.isdigit():
            continue
        pid = int(proc_dir.name)
        key = _start(fs, proc_dir)
        if key is None:
            continue
        cgroup = fs.read(proc_dir / "cgroup")
        if cgroup is not None:
            snap.members[(pid, key)] = {
                f"{_hierarchy_key(line.split(':', 2)[1])}": line.split(":", 2)[2]
                for line in cgroup.splitlines()
                if line.count(":") >= 2
            }
        with contextlib.suppress(OSError):
            for task_dir in sorted((proc_dir / "task").iterdir()):
                thread = _thread(fs, task_dir)
                if thread is not None:
                    snap.threads[(int(task_dir.name), thread[0])] = thread[1]
    return snap


def _start(fs: _Root, proc_dir: Path) -> int | None:
    text = fs.read(proc_dir / "stat")
    parsed = _stat_fields(text) if text else None
    if parsed is None or len(parsed[1]) < 20:
        return None
    return int(parsed[1][19])


def _thread(fs: _Root, task_dir: Path) -> tuple[int, Thread] | None:
    text = fs.read(task_dir / "stat")
    parsed = _stat_fields(text) if text else None
    status = fs.read(task_dir / "status")
    if parsed is None or status is None or len(parsed[1]) < 39:
        return None
    comm, rest = parsed
    return int(rest[19]), Thread(comm, int(rest[38]), int(rest[37]), _cpus_allowed(status))


def _cgroup_dirs(top: Path) -> Iterator[Path]:
    yield top
    with contextlib.suppress(OSError):
        for entry in sorted(top.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                yield from _cgroup_dirs(entry)


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """What changed from ``before`` to ``after``, one line each; threads in both only."""
    lines: list[str] = []
    lines += _mapping_diff("knob", before.knobs, after.knobs)
    lines += _mapping_diff("config", before.config, after.config)
    for directory in sorted(set(before.cgroups) | set(after.cgroups)):
        if directory not in after.cgroups:
            lines.append(f"cgroup {directory}: removed")
        elif directory not in before.cgroups:
            lines.append(f"cgroup {directory}: created")
        else:
            lines += _mapping_diff(
                f"cgroup {directory}", before.cgroups[directory], after.cgroups[directory]
            )
    for proc in sorted(set(before.members) & set(after.members)):
        for hierarchy, group in sorted(before.members[proc].items()):
            now = after.members[proc].get(hierarchy)
            if now != group:
                lines.append(f"process {proc[0]} in {hierarchy or 'v2'}: {group} -> {now}")
    for proc in sorted(set(before.threads) & set(after.threads)):
        old, new = before.threads[proc], after.threads[proc]
        if old.comm.startswith(KERNEL_REBOUND):
            new = Thread(new.comm, new.policy, new.priority, old.cpus)
        if old != new:
            lines.append(
                f"thread {proc[0]} ({old.comm}): "
                f"policy {old.policy}:{old.priority} cpus {old.cpus} -> "
                f"policy {new.policy}:{new.priority} cpus {new.cpus}"
            )
    return lines


def _mapping_diff(label: str, before: dict[str, str], after: dict[str, str]) -> list[str]:
    lines = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            lines.append(f"{label} {key}: {_short(old)} -> {_short(new)}")
    return lines


def _short(text: str | None) -> str:
    if text is None:
        return "(absent)"
    flat = text.strip().replace("\n", "\\n")
    return repr(flat if len(flat) <= 60 else flat[:57] + "...")


_SELECTED = re.compile(r"\[([^\]]+)\]")


def _writable_form(text: str) -> str:
    """What to write to put a knob back: the bracketed choice of a selector file."""
    found = _SELECTED.search(text)
    return found.group(1) if found else text.strip()


def repair(before: Snapshot, root: str = "/", *, syscalls: bool = True) -> list[str]:
    """Put the host under ``root`` back to ``before``; return what had to be repaired.

    Config files and knobs are written back, cgroups the host gained lose
    their processes to the groups they were in and are removed, lost ones are
    made again, and threads get their policy and CPUs back (``syscalls``).
    A repair that fails is listed with its error; the caller checks the host
    again with :func:`take`.
    """
    fs = _Root(root)
    now = take(root)
    done: list[str] = []

    def attempt(what: str, action: Callable[[], object]) -> None:
        try:
            action()
            done.append(what)
        except OSError as exc:
            done.append(f"{what}: FAILED ({os.strerror(exc.errno or errno.EIO)})")

    for path, text in before.config.items():
        if now.config.get(path) != text:
            attempt(f"config {path} rewritten", partial(Path.write_text, fs.path(path), text))
    for path in set(now.config) - set(before.config):
        attempt(f"config {path} removed", fs.path(path).unlink)
    for path, text in before.knobs.items():
        if path in now.knobs and now.knobs[path] != text:
            value = _writable_form(text)
            attempt(f"knob {path} = {value!r}", partial(Path.write_text, fs.path(path), value))
    for proc, groups in before.members.items():
        for hierarchy, group in groups.items():
            live = now.members.get(proc, {}).get(hierarchy)
            mount = before.mounts.get(hierarchy)
            if live is None or live == group or mount is None:
                continue
            target = fs.path(f"{mount}{group.rstrip('/')}/cgroup.procs")
            attempt(
                f"process {proc[0]} moved back to {group} ({hierarchy or 'v2'})",
                partial(target.write_text, f"{proc[0]}\n"),
            )
    for directory in sorted(set(now.cgroups) - set(before.cgroups), reverse=True):
        mount = next((m for m in before.mounts.values() if directory.startswith(m)), "")
        for word in (fs.read(fs.path(f"{directory}/cgroup.procs")) or "").split():
            with contextlib.suppress(OSError):  # kernel threads that cannot move
                fs.path(f"{mount}/cgroup.procs").write_text(f"{word}\n")
        attempt(f"cgroup {directory} removed", fs.path(directory).rmdir)
    for directory in sorted(set(before.cgroups) - set(now.cgroups)):
        attempt(f"cgroup {directory} made again", fs.path(directory).mkdir)
    after_dirs = take(root).cgroups
    for directory, files in before.cgroups.items():
        live_files = after_dirs.get(directory, {})
        for name in sorted(files, key=lambda n: (n != "cpuset.mems", n)):
            if name in live_files and live_files[name] != files[name]:
                value = _writable_form(files[name])
                attempt(
                    f"cgroup {directory}/{name} = {value!r}",
                    partial(fs.path(f"{directory}/{name}").write_text, value),
                )
    if syscalls:
        now = take(root)  # threads moved back between cgroups got their CPUs back
        for proc, thread in before.threads.items():
            live_thread = now.threads.get(proc)
            if live_thread is None or live_thread == thread:
                continue
            if (live_thread.policy, live_thread.priority) != (thread.policy, thread.priority):
                attempt(
                    f"thread {proc[0]} ({thread.comm}) policy {thread.policy}:{thread.priority}",
                    partial(
                        os.sched_setscheduler,
                        proc[0],
                        thread.policy,
                        os.sched_param(thread.priority),
                    ),
                )
            if live_thread.cpus != thread.cpus and not thread.comm.startswith(KERNEL_REBOUND):
                attempt(
                    f"thread {proc[0]} ({thread.comm}) cpus {thread.cpus}",
                    partial(os.sched_setaffinity, proc[0], _cpu_list(thread.cpus)),
                )
    return done


def _cpu_list(text: str) -> set[int]:
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus
