"""The tuning engine: plan, apply, verify and roll back a profile for a partition plan.

Plugins run in a fixed order (kernel knobs, guest hugepages, irqbalance
before IRQs, cpusets,
thread priorities, power, then the persistent files); apply writes only the
changes not already in effect, so applying twice changes nothing the second
time. Rollback replays the journal newest first, each entry through the
plugin that wrote it, and forgets each entry once it is restored, so an
interrupted rollback can simply be run again.

This module must not know any particular setting, nor print anything.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rtkvm.cpuset import CpuSet
from rtkvm.errors import CpuListError, InputError, RtkvmError, TuneError
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.tune.journal import Entry, Journal
from rtkvm.tune.model import ApplyResult, Change, Check, Shortfall
from rtkvm.tune.plugins.base import Context, Plugin
from rtkvm.tune.plugins.cmdline import CmdlinePlugin
from rtkvm.tune.plugins.cpusets import CpusetPlugin
from rtkvm.tune.plugins.hugepages import HugepagesPlugin
from rtkvm.tune.plugins.irqbalance import IrqbalancePlugin
from rtkvm.tune.plugins.irqs import IrqPlugin
from rtkvm.tune.plugins.modprobe import ModprobePlugin
from rtkvm.tune.plugins.power import PowerPlugin
from rtkvm.tune.plugins.sysctl import SysctlPlugin
from rtkvm.tune.plugins.sysfs import SysfsPlugin
from rtkvm.tune.plugins.threads import AffinityPlugin, ThreadPlugin
from rtkvm.tune.profile import Profile, site_variables
from rtkvm.tune.system import CommandRunner, ProcessControl
from rtkvm.tune.writer import Writer

ONLINE_PATH = "/sys/devices/system/cpu/online"

PLUGINS: tuple[Plugin, ...] = (
    SysctlPlugin(),
    SysfsPlugin(),
    HugepagesPlugin(),
    IrqbalancePlugin(),
    IrqPlugin(),
    CpusetPlugin(),
    ThreadPlugin(),
    AffinityPlugin(),
    PowerPlugin(),
    ModprobePlugin(),
    CmdlinePlugin(),
)


def plugin_for(setting: str) -> Plugin:
    prefix = setting.split(":", 1)[0]
    for plugin in PLUGINS:
        if plugin.name == prefix:
            return plugin
    raise TuneError(f"journal entry for unknown setting {setting!r} (written by a newer rtkvm?)")


@dataclass
class Tuning:
    """A profile bound to a plan, user choices and a host."""

    fs: HostFS
    profile: Profile
    plan: PartitionPlan
    proc: ProcessControl
    runner: CommandRunner
    journal: Journal
    choices: dict[str, str] = field(default_factory=dict)
    only: Sequence[str] = ()
    """Shell patterns on setting ids (``sysctl:*``); empty = every setting."""
    guest_hugepages: int | None = None
    """Hugepages per NUMA node of the RT vCPUs for guest memory; None = not requested."""

    def _check_plan_fits(self) -> None:
        online = self.fs.read_line(ONLINE_PATH)
        if isinstance(online, Unknown):
            return  # nothing to check against; the kernel refuses impossible masks anyway
        try:
            cpus = CpuSet.parse(online)
        except CpuListError:
            return
        extra = self.plan.all_cpus - cpus
        if extra:
            raise InputError(
                f"the plan names CPUs {extra} that are not online on this host (online: {cpus}); "
                "make the plan on this host with `rtkvm host plan`"
            )

    def context(self) -> Context:
        self._check_plan_fits()
        if self.guest_hugepages is not None and self.guest_hugepages < 0:
            raise InputError(
                f"--guest-hugepages {self.guest_hugepages}: give a number of hugepages >= 0 "
                "(per NUMA node of the RT vCPUs)"
            )
        header = self.journal.read_header() or {}
        return Context(
            fs=self.fs,
            profile=self.profile,
            variables=site_variables(self.plan, self.profile, self.choices),
            kernel_cmdline=self.plan.kernel_cmdline,
            refused=frozenset(header.get("refused", [])),
            guest_hugepages=self.guest_hugepages,
        )

    def _selected(self, setting: str) -> bool:
        return not self.only or any(fnmatch.fnmatchcase(setting, p) for p in self.only)

    def changes(self, ctx: Context | None = None) -> list[Change]:
        """Every planned change of the selected settings, in apply order."""
        ctx = ctx or self.context()
        return [c for p in PLUGINS for c in p.plan(ctx) if self._selected(c.setting)]

    def _triage(self, ctx: Context, result: ApplyResult) -> list[tuple[Plugin, Change]]:
        needed: list[tuple[Plugin, Change]] = []
        for plugin in PLUGINS:
            for change in plugin.plan(ctx):
                if not self._selected(change.setting):
                    continue
                if change.needed:
                    needed.append((plugin, change))
                elif change.unsupported is None:
                    result.unchanged += 1
                else:
                    result.notes.append(f"{change.setting}: {change.unsupported}")
        return needed

    def apply(self, *, budget: int | None = None) -> ApplyResult:
        """Journal and write every needed change; ``budget`` stops after N writes (tests)."""
        preview = ApplyResult()
        if not self._triage(self.context(), preview):
            return preview
        with self.journal.locked():
            ctx = self.context()  # again, under the lock: the host may have changed
            result = ApplyResult()
            needed = self._triage(ctx, result)
            writer = Writer(self.fs, self.journal, self.proc, self.runner, budget=budget)
            header = self.header(refused=sorted(ctx.refused))
            self.journal.write_header(header)
            for plugin, change in needed:
                note = plugin.apply(ctx, change, writer)
                if note is None:
                    result.written.append(change)
                elif isinstance(note, Shortfall):
                    result.written.append(change)
                    result.short.append(note.text)
                else:
                    result.refused.append(note)
                    header["refused"].append(change.target)
            self.journal.stamp_change("apply", header)
        return result

    def header(self, refused: list[str]) -> dict[str, Any]:
        return {
            "profile": self.profile.name,
            "choices": dict(self.choices),
            "only": list(self.only),
            "guest_hugepages": self.guest_hugepages,
            "plan": self.plan.model_dump(mode="json"),
            "refused": refused,
        }

    def verify(self) -> list[Check]:
        ctx = self.context()
        return [c for p in PLUGINS for c in p.verify(ctx) if self._selected(c.setting)]


@dataclass
class RollbackResult:
    restored: int = 0
    notes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def closed_with(entry: Entry, entries: list[Entry], fs: HostFS) -> str | None:
    """Why a file entry needs no restore, or None: its directory is gone (the object it
    belonged to, a cgroup or a device, went with its files), or it lives inside a directory
    that rtkvm created (an earlier mkdir entry; rmdir of a cgroup takes its files along)."""
    if entry.kind != "file":
        return None
    directory = entry.target.rsplit("/", 1)[0]
    if directory and not fs.is_dir(directory):
        return f"{entry.target}: its directory {directory} no longer exists; nothing to restore"
    for older in entries:
        created = older.seq < entry.seq and older.kind == "mkdir" and older.original is None
        if created and entry.target.startswith(f"{older.target}/"):
            if not fs.is_dir(older.target):
                return f"{entry.target}: its directory {older.target} is gone"
            return f"{entry.target}: goes with {older.target}, which rtkvm created"
    return None


def rollback(
    fs: HostFS,
    journal: Journal,
    proc: ProcessControl,
    runner: CommandRunner,
    *,
    forget: frozenset[int] = frozenset(),
) -> RollbackResult:
    """Undo every journal entry, newest first; failed entries stay in the journal.

    Entries inside a directory rtkvm created are closed with it, without a write.
    ``forget``: sequence numbers to drop without restoring (an operator's decision
    for an entry that can never be restored, named by the failure message).
    """
    writer = Writer(fs, journal, proc, runner)
    result = RollbackResult()
    with journal.locked():
        entries = journal.entries()
        for entry in reversed(entries):
            if entry.seq in forget:
                journal.discard(entry)
                result.notes.append(f"forgotten without restoring: {entry.describe()}")
                continue
            closed = closed_with(entry, entries, fs)
            if closed is not None and entry.kind == "file":
                journal.discard(entry)
                result.notes.append(f"closed: {closed}")
                result.restored += 1
                continue
            try:
                note = plugin_for(entry.setting).rollback(entry, writer)
            except RtkvmError as exc:
                result.failed.append(
                    f"entry {entry.seq}: {entry.describe()}: {exc} (if it can never be "
                    f"restored: rtkvm host rollback --forget {entry.seq})"
                )
                continue
            if note:
                result.notes.append(note)
            journal.discard(entry)
            result.restored += 1
        if result.failed:
            journal.stamp_change("rollback")
    if not result.failed:
        journal.clear()
    return result
