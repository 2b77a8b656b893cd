"""The plugin contract and what every plugin is given.

A plugin turns the profile's settings of one kind into planned
:class:`Change` values (``plan``), makes one change through the journaled
writer (``apply``), judges what is in effect (``verify``, which by default
re-runs ``plan`` so the expected value is computed exactly as apply computes
it), and undoes one journal entry (``rollback``). This module must not know
any particular setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rtkvm.cpuset import CpuSet
from rtkvm.errors import CpuListError, DataError
from rtkvm.host.kernel import parse_selected
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.tune.journal import Entry
from rtkvm.tune.model import Change, Check, Shortfall, Status
from rtkvm.tune.profile import Profile, substitute
from rtkvm.tune.system import Task, read_tasks
from rtkvm.tune.writer import Writer


@dataclass
class Context:
    """What plugins read: the host, the profile, the site variables, past refusals."""

    fs: HostFS
    profile: Profile
    variables: Mapping[str, str]
    kernel_cmdline: tuple[str, ...] = ()
    """The plan's kernel arguments (computed by the planner)."""
    refused: frozenset[str] = frozenset()
    """Targets the kernel refused at apply time (IRQs that cannot move, pinned kthreads)."""
    guest_hugepages: int | None = None
    """Hugepages per NUMA node the operator asked for (--guest-hugepages); None: not asked."""
    _tasks: list[Task] | None = field(default=None, repr=False)

    def value(self, text: str, where: str) -> str:
        return substitute(text, self.variables, where=where)

    def cpus(self, text: str, where: str) -> CpuSet:
        value = self.value(text, where)
        try:
            return CpuSet.parse(value)
        except CpuListError as exc:
            raise DataError(f"{where}: {value!r} is not a CPU list: {exc}") from None

    def tasks(self) -> list[Task]:
        """Threads in /proc, read once per context."""
        if self._tasks is None:
            self._tasks = read_tasks(self.fs)
        return self._tasks


class Plugin:
    """Base of every plugin; subclasses implement ``plan`` and override what differs."""

    name = "base"

    def plan(self, ctx: Context) -> list[Change]:
        raise NotImplementedError

    def apply(self, ctx: Context, change: Change, writer: Writer) -> str | Shortfall | None:
        """Make one change; returns a note when the kernel refused it and that is normal,
        a Shortfall when it was written but the kernel granted less."""
        writer.apply(change)
        return None

    def verify(self, ctx: Context) -> list[Check]:
        return [check_from_change(c, ctx) for c in self.plan(ctx)]

    def rollback(self, entry: Entry, writer: Writer) -> str | None:
        return writer.undo(entry)


def check_from_change(change: Change, ctx: Context) -> Check:
    """ok when the planned value is in effect, drift otherwise, unsupported when impossible."""
    if change.unsupported is not None:
        status, note = Status.UNSUPPORTED, change.unsupported
    elif change.target in ctx.refused and not change.in_effect:
        status, note = Status.UNSUPPORTED, "the kernel refused this change at apply time"
    else:
        status, note = (Status.OK if change.in_effect else Status.DRIFT), ""
    return Check(
        change.setting, change.target, status, change.after, shown(change.before), change.why, note
    )


def shown(value: str | None) -> str:
    if value is None:
        return "(absent)"
    return " ".join(value.split())


def same(mode: str, live: str, desired: str) -> bool:
    """Whether a file's live text already is the desired value under a compare mode."""
    if mode == "selected":
        if live.strip() == desired.strip():
            return True  # a file that reads back what was written (no [selection] shown)
        picked = parse_selected(live, "")
        return not isinstance(picked, Unknown) and picked == desired.strip()
    if mode in ("mask", "cpulist"):
        try:
            parse = CpuSet.parse_mask if mode == "mask" else CpuSet.parse
            want = CpuSet.parse_mask(desired) if mode == "mask" else CpuSet.parse(desired)
            return parse(live.strip() or ("0" if mode == "mask" else "")) == want
        except CpuListError:
            return False
    return live.split() == desired.split()


def file_change(
    ctx: Context,
    setting: str,
    path: str,
    desired: str,
    why: str,
    *,
    compare: str = "exact",
    missing: str | None = None,
) -> Change:
    """A kernel-file change; unsupported (``missing`` or a default reason) if the file is absent."""
    live = ctx.fs.read_maybe(path)
    if isinstance(live, Unknown):
        reason = missing or f"{path} {live.reason} on this kernel"
        return Change(setting, path, "file", None, desired, why, False, unsupported=reason)
    return Change(setting, path, "file", live, desired, why, same(compare, live, desired))


def glob_paths(fs: HostFS, pattern: str) -> Sequence[str]:
    """Expand ``*`` in path components (``/sys/.../machinecheck*/ignore_ce``), sorted."""
    paths = ["/"]
    for part in [p for p in pattern.split("/") if p]:
        nxt: list[str] = []
        for base in paths:
            prefix = base.rstrip("/")
            if "*" in part or "?" in part:
                nxt.extend(f"{prefix}/{n}" for n in fs.glob_names(base, part))
            else:
                nxt.append(f"{prefix}/{part}")
        paths = nxt
    return sorted(paths)
