"""CPU partitions as cgroup cpusets, the way partrt does it.

cgroup v2 with the cpuset controller: ``rtkvm-<name>`` groups under the root,
``+cpuset`` in the root's subtree_control, isolated groups made isolated
partitions (cpuset.cpus.partition). cgroup v1 cpusets otherwise: the groups
with cpuset.cpus and cpuset.mems, no load balancing at the root and in the
isolated groups. Either way every movable process still in the root group
is moved into the group that ``holds_tasks`` (housekeeping). A process the
kernel refuses to move (a per-CPU kernel thread) is reported, not fatal.

Must not move tasks that already live in another group (libvirt's, a
container's): their owner placed them.
"""

from __future__ import annotations

import contextlib

from rtkvm.errors import HostWriteError, WriteRefusedError
from rtkvm.host.process import MOUNTS_PATH, parse_cgroup_mounts
from rtkvm.hostfs import Unknown
from rtkvm.tune.journal import Entry
from rtkvm.tune.model import Change, Check, Status
from rtkvm.tune.plugins.base import Context, Plugin, check_from_change, same
from rtkvm.tune.system import parse_proc_cgroup
from rtkvm.tune.writer import Writer

PREFIX = "rtkvm-"


def find_hierarchy(ctx: Context) -> tuple[str, str] | None:
    """(mount point, "v1" or "v2") of the cpuset controller; None without one."""
    text = ctx.fs.read_maybe(MOUNTS_PATH)
    if isinstance(text, Unknown):
        return None
    mounts = parse_cgroup_mounts(text)
    for mount in mounts:
        if mount.fstype == "cgroup2":
            controllers = ctx.fs.read_line(f"{mount.path}/cgroup.controllers")
            if isinstance(controllers, str) and "cpuset" in controllers.split():
                return mount.path, "v2"
    for mount in mounts:
        if mount.fstype == "cgroup" and "cpuset" in mount.controllers:
            return mount.path, "v1"
    return None


def _file(ctx: Context, setting: str, path: str, value: str, why: str, compare: str) -> Change:
    live = ctx.fs.read_maybe(path)
    before = live if isinstance(live, str) else None
    in_effect = before is not None and same(compare, before, value)
    return Change(setting, path, "file", before, value, why, in_effect)


class CpusetPlugin(Plugin):
    name = "cpuset"

    def plan(self, ctx: Context) -> list[Change]:
        groups = [(g, ctx.cpus(g.cpus, f"cpuset {g.name}")) for g in ctx.profile.cpuset]
        groups = [(g, cpus) for g, cpus in groups if cpus]
        if not groups:
            return []
        found = find_hierarchy(ctx)
        if found is None:
            return [
                Change(
                    "cpuset:root",
                    "/sys/fs/cgroup",
                    "mkdir",
                    None,
                    "cpuset groups",
                    groups[0][0].why,
                    False,
                    unsupported="no cpuset cgroup controller is mounted",
                )
            ]
        mount, version = found
        changes: list[Change] = []
        if version == "v2":
            path = f"{mount}/cgroup.subtree_control"
            live = ctx.fs.read_maybe(path)
            before = live if isinstance(live, str) else None
            changes.append(
                Change(
                    "cpuset:root",
                    path,
                    "file",
                    before,
                    "+cpuset",
                    "enable the cpuset controller for rtkvm's groups",
                    before is not None and "cpuset" in _controllers(before),
                )
            )
        elif any(g.isolated for g, _ in groups):
            changes.append(
                _file(
                    ctx,
                    "cpuset:root",
                    f"{mount}/cpuset.sched_load_balance",
                    "0",
                    "no load balancing across the whole machine: only inside groups",
                    "exact",
                )
            )
        mems = ctx.fs.read_line(f"{mount}/cpuset.mems")
        if isinstance(mems, Unknown):
            mems = ctx.fs.read_line(f"{mount}/cpuset.mems.effective")
        for group, cpus in groups:
            setting = f"cpuset:{group.name}"
            directory = f"{mount}/{PREFIX}{group.name}"
            exists = ctx.fs.is_dir(directory)
            changes.append(
                Change(
                    setting,
                    directory,
                    "mkdir",
                    "directory" if exists else None,
                    "directory",
                    group.why,
                    exists,
                    cgroup_mount=mount,
                    controller="cpuset" if version == "v1" else "",
                )
            )
            if version == "v1" and isinstance(mems, str):
                changes.append(
                    _file(ctx, setting, f"{directory}/cpuset.mems", mems, group.why, "cpulist")
                )
            changes.append(
                _file(ctx, setting, f"{directory}/cpuset.cpus", cpus.format(), group.why, "cpulist")
            )
            if group.isolated and version == "v2":
                changes.append(
                    _file(
                        ctx,
                        setting,
                        f"{directory}/cpuset.cpus.partition",
                        "isolated",
                        group.why,
                        "exact",
                    )
                )
            elif group.isolated:
                changes.append(
                    _file(
                        ctx,
                        setting,
                        f"{directory}/cpuset.sched_load_balance",
                        "0",
                        group.why,
                        "exact",
                    )
                )
            if group.holds_tasks:
                changes.extend(self._moves(ctx, setting, mount, version, group.name, group.why))
        return changes

    def _moves(
        self, ctx: Context, setting: str, mount: str, version: str, name: str, why: str
    ) -> list[Change]:
        controller = "cpuset" if version == "v1" else ""
        moves: list[Change] = []
        for task in ctx.tasks():
            if task.pid != task.tid:
                continue
            if task.kthread and (version == "v2" or task.bound):
                continue  # per-CPU kernel threads stay where the kernel put them
            text = ctx.fs.read_maybe(f"/proc/{task.pid}/cgroup")
            if isinstance(text, Unknown) or parse_proc_cgroup(text, controller) != "/":
                continue
            moves.append(
                Change(
                    f"{setting}.tasks",
                    f"pid {task.pid} ({task.comm})",
                    "cgroup",
                    "/",
                    f"/{PREFIX}{name}",
                    why,
                    False,
                    pid=task.pid,
                    cgroup_mount=mount,
                    controller=controller,
                )
            )
        return moves

    def apply(self, ctx: Context, change: Change, writer: Writer) -> str | None:
        try:
            writer.apply(change)
        except WriteRefusedError as exc:
            if change.kind != "cgroup":
                raise
            return f"{change.target}: not moved ({exc.reason}); normal for some kernel threads"
        return None

    def verify(self, ctx: Context) -> list[Check]:
        checks: list[Check] = []
        moves: dict[str, list[Change]] = {}
        for change in self.plan(ctx):
            if change.kind == "cgroup":
                if change.target not in ctx.refused:
                    moves.setdefault(change.setting, []).append(change)
            else:
                checks.append(check_from_change(change, ctx))
        for group in ctx.profile.cpuset:
            if not group.holds_tasks:
                continue
            setting = f"cpuset:{group.name}.tasks"
            left = moves.get(setting, [])
            status = Status.DRIFT if left else Status.OK
            actual = f"{len(left)} movable tasks in the root group" if left else "none"
            note = ", ".join(c.target for c in left[:5])
            checks.append(
                Check(
                    setting,
                    f"{PREFIX}{group.name}",
                    status,
                    "no movable task in the root group",
                    actual,
                    group.why,
                    note,
                )
            )
        return checks

    def rollback(self, entry: Entry, writer: Writer) -> str | None:
        if entry.kind == "file" and entry.target.endswith("/cgroup.subtree_control"):
            live = writer.fs.read_maybe(entry.target)
            kernel_file = not (isinstance(live, str) and live.strip().startswith("+"))
            if kernel_file and "cpuset" not in _controllers(entry.original or ""):
                # cgroupfs reads back the enabled controllers and takes +/- edits
                writer.fs.write(entry.target, "-cpuset")
                return None
        if entry.kind == "mkdir" and entry.cgroup_mount is not None:
            self._evacuate(entry, writer)
        return writer.undo(entry)

    def _evacuate(self, entry: Entry, writer: Writer) -> None:
        """Move tasks started since apply out of a group so that it can be removed."""
        procs = writer.fs.read_maybe(f"{entry.target}/cgroup.procs")
        if not isinstance(procs, str):
            return
        for word in procs.split():
            with contextlib.suppress(HostWriteError):  # exited meanwhile, or a kernel thread
                writer.proc.attach(int(word), entry.cgroup_mount or "", "/", entry.controller)


def _controllers(text: str) -> list[str]:
    return [word.lstrip("+") for word in text.split()]
