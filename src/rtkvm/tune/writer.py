"""The journaled writer: every host mutation of apply and rollback goes through here.

For each change it first records the original value in the journal (fsynced),
then spends one unit of the write budget, then changes the host. The budget
is the fault-injection seam: ``budget=N`` stops apply after N host writes,
as if rtkvm had crashed right after journaling the next one. If the host
refuses a write, the journal entry is discarded (nothing changed) and a
TuneError names the setting and the file.

This module must not decide what to change (plugins plan that) nor in what
order to undo (the engine replays the journal in reverse).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtkvm.cpuset import CpuSet
from rtkvm.errors import ApplyInterruptedError, HostWriteError, TuneError, WriteRefusedError
from rtkvm.hostfs import HostFS
from rtkvm.tune.journal import Entry, Journal
from rtkvm.tune.kernelfiles import displays_as, restorable
from rtkvm.tune.model import Change
from rtkvm.tune.system import CommandRunner, ProcessControl, parse_sched


@dataclass
class Writer:
    fs: HostFS
    journal: Journal
    proc: ProcessControl
    runner: CommandRunner
    budget: int | None = None
    """Host writes allowed before apply stops (fault injection); None = unlimited."""
    writes: int = 0

    def _spend(self, entry: Entry) -> None:
        if self.budget is not None and self.writes >= self.budget:
            raise ApplyInterruptedError(
                f"apply stopped after {self.writes} writes (write budget); journaled but not "
                f"written: {entry.describe()}. Run `rtkvm host rollback` to undo."
            )
        self.writes += 1

    def _journal(self, change: Change, kind: str, target: str, original: str | None) -> Entry:
        return self.journal.record(
            Entry(
                setting=change.setting,
                kind=kind,
                target=target,
                original=original,
                persistent=change.persistent,
                pid=change.pid,
                cgroup_mount=change.cgroup_mount,
                controller=change.controller,
            )
        )

    def apply(self, change: Change) -> None:
        """Journal then make one change; raises TuneError naming setting and file on refusal."""
        if change.kind == "config":
            self._make_parents(change)
            if change.then_run:
                run = Entry(
                    change.setting,
                    "run",
                    change.target,
                    None,
                    change.persistent,
                    argv=change.then_run,
                )
                self.journal.record(run)
        original = change.before
        if change.kind in ("file", "config"):
            original = None
            if self.fs.exists(change.target):
                live = self.fs.read_maybe(change.target)
                if not isinstance(live, str):
                    raise TuneError(
                        f"setting {change.setting}: cannot read {change.target} to journal its "
                        f"value ({live.reason}); nothing was written for it"
                    )
                original = restorable(change.target, live) if change.kind == "file" else live
        entry = self._journal(change, change.kind, change.target, original)
        self._spend(entry)
        try:
            self._do(change)
        except HostWriteError as exc:
            self.journal.discard(entry)
            raise WriteRefusedError(change.setting, exc.path, exc.reason) from None
        if change.then_run:
            self.runner.run(change.then_run)

    def _make_parents(self, change: Change) -> None:
        parent = change.target.rsplit("/", 1)[0]
        missing: list[str] = []
        while parent and not self.fs.is_dir(parent):
            missing.append(parent)
            parent = parent.rsplit("/", 1)[0]
        for directory in reversed(missing):
            entry = self._journal(change, "mkdir", directory, None)
            self._spend(entry)
            self.fs.make_dirs(directory)

    def _do(self, change: Change) -> None:
        if change.kind == "file":
            self.fs.write(change.target, change.after)
        elif change.kind == "config":
            self.fs.write_atomic(change.target, change.after)
        elif change.kind == "mkdir":
            self.fs.make_dirs(change.target)
        elif change.kind == "sched":
            policy, priority = parse_sched(change.after)
            self.proc.set_sched(_pid(change.pid), policy, priority)
        elif change.kind == "affinity":
            self.proc.set_affinity(_pid(change.pid), CpuSet.parse(change.after))
        elif change.kind == "cgroup":
            self.proc.attach(
                _pid(change.pid), change.cgroup_mount or "", change.after, change.controller
            )
        else:
            raise TuneError(f"setting {change.setting}: unknown change kind {change.kind!r}")

    def undo(self, entry: Entry) -> str | None:
        """Restore one entry; returns a note when there was nothing to restore."""
        kind = entry.kind
        if kind == "run":
            self.runner.run(entry.argv)
        elif kind == "config":
            if entry.original is None:
                self.fs.remove(entry.target)
            elif self.fs.read_maybe(entry.target) != entry.original:
                self.fs.write_atomic(entry.target, entry.original)
        elif kind == "file":
            if entry.original is None:
                self.fs.remove(entry.target)
                return None
            # Journals written before rtkvm.tune.kernelfiles hold a selector's display.
            original = restorable(entry.target, entry.original)
            live = self.fs.read_maybe(entry.target)
            if not (isinstance(live, str) and displays_as(live, original)):
                self.fs.write(entry.target, original)
        elif kind == "mkdir":
            self.fs.remove_dir(entry.target)
        elif kind in ("sched", "affinity", "cgroup"):
            return self._undo_task(entry)
        else:
            raise TuneError(f"journal entry {entry.seq} has unknown kind {kind!r}")
        return None

    def _undo_task(self, entry: Entry) -> str | None:
        pid = _pid(entry.pid)
        original = entry.original or ""
        journaled = _comm_of(entry.target)
        live = self._comm(pid)
        if live is None:
            return f"{entry.setting}: {entry.target} has exited; nothing to restore"
        if journaled is not None and live != journaled:
            return (
                f"{entry.setting}: {entry.target} has exited and its id now belongs to "
                f"{live!r}; left alone"
            )
        try:
            if entry.kind == "sched":
                self.proc.set_sched(pid, *parse_sched(original))
            elif entry.kind == "affinity":
                self.proc.set_affinity(pid, CpuSet.parse(original))
            else:
                self.proc.attach(pid, entry.cgroup_mount or "", original or "/", entry.controller)
        except HostWriteError as exc:
            if exc.reason in (_GONE, "does not exist"):
                return f"{entry.setting}: {entry.target} has exited; nothing to restore"
            raise
        return None

    def _comm(self, tid: int) -> str | None:
        """The name of a thread (process or thread id), None when it is gone."""
        live = self.fs.read_line(f"/proc/{tid}/comm")
        if isinstance(live, str):
            return live
        for pid in self.fs.glob_names("/proc", "[0-9]*"):
            found = self.fs.read_line(f"/proc/{pid}/task/{tid}/comm")
            if isinstance(found, str):
                return found
        return None


_GONE = "No such process"
_TARGET = re.compile(r"^(?:pid|tid) \d+ \((.*)\)$")


def _comm_of(target: str) -> str | None:
    """The thread name recorded in a target such as ``tid 10 (ksoftirqd/0)``."""
    match = _TARGET.match(target)
    return match.group(1) if match else None


def _pid(pid: int | None) -> int:
    if pid is None:
        raise TuneError("a thread change without a pid (bug in a tuning plugin)")
    return pid
