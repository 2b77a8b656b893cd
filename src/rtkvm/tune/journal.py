"""The tuning journal: what apply changed and the original values, written before each change.

One JSON file per entry (``entries/00000007.json``), each written
atomically (temp file, fsync, rename, fsync of the directory) before the
change it describes, so a crash at any point leaves a journal that
rollback can replay. Entries about kernel state go to a volatile directory
under /run (gone after a reboot, like the state itself); entries about
persistent files (boot loader, modprobe.d, irqbalance config) go to
/var/lib. Sequence numbers are global across both, so rollback replays
everything in exact reverse order. A header (profile, plan, choices) in the
persistent directory lets ``verify`` and ``rollback`` run without options.
Every finished apply, and a rollback that left entries, restamps the header
(``changed``); the node agent compares :meth:`Journal.fingerprint` between
its steps and inspects its host again at once when it moved.

This module stores and lists entries; it must not change the host state
they describe (the writer does) nor decide what to journal.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from rtkvm.errors import HostReadError, HostWriteError, TuneError
from rtkvm.footprint import TUNE_PERSISTENT_DIR, TUNE_VOLATILE_DIR
from rtkvm.hostfs import HostFS

VOLATILE_DIR = TUNE_VOLATILE_DIR.path
PERSISTENT_DIR = TUNE_PERSISTENT_DIR.path
HEADER = "header.json"
LOCK = "lock"
FORMAT = 1
CHANGED = "changed"
"""The header's stamp of the last finished apply or partial rollback: ``{event, ns}``."""


@dataclass(frozen=True)
class Entry:
    """One journaled change and how to undo it."""

    setting: str
    kind: str
    """file, config, mkdir, sched, affinity, cgroup, or run (a command to run on rollback)."""
    target: str
    original: str | None
    """The value before the change; None when the file did not exist."""
    persistent: bool = False
    pid: int | None = None
    cgroup_mount: str | None = None
    controller: str = ""
    argv: tuple[str, ...] = ()
    seq: int = 0

    def describe(self) -> str:
        if self.kind == "run":
            return f"{self.setting}: run {' '.join(self.argv)}"
        shown = "(absent)" if self.original is None else self.original.strip()[:60]
        return f"{self.setting}: {self.kind} {self.target} <- {shown}"


@dataclass
class Journal:
    """Journal entries under a volatile and a persistent directory (host paths)."""

    fs: HostFS
    volatile_dir: str = VOLATILE_DIR
    persistent_dir: str = PERSISTENT_DIR
    _next: int | None = field(default=None, repr=False)

    def _dir(self, persistent: bool) -> str:
        return self.persistent_dir if persistent else self.volatile_dir

    def _ensure(self, directory: str) -> None:
        try:
            self.fs.make_dirs(f"{directory}/entries")
        except HostWriteError as exc:
            raise TuneError(
                f"cannot create the tuning journal directory {exc.path}: {exc.reason}; "
                "nothing was changed (give --journal-dir a writable directory, or run as root)"
            ) from None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Only one apply or rollback at a time (flock; released by the kernel on a crash)."""
        self.prepare()
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self.fs.exclusive_lock(f"{self.volatile_dir}/{LOCK}"))
            except HostWriteError as exc:
                raise TuneError(
                    f"{exc.path}: {exc.reason}: another `rtkvm host tune --apply` or rollback "
                    "is running; wait for it to finish"
                ) from None
            yield

    def prepare(self) -> None:
        """Create both journal directories before any change; on failure undo and raise."""
        created: list[str] = []
        try:
            for directory in (self.persistent_dir, self.volatile_dir):
                created += self.fs.make_dirs(f"{directory}/entries")
        except HostWriteError as exc:
            for path in reversed(created):
                self._rmdir_quiet(path)
            raise TuneError(
                f"cannot create the tuning journal directory {exc.path}: {exc.reason}; "
                "nothing was changed (give --journal-dir a writable directory, or run as root)"
            ) from None

    def _write_json(self, path: str, data: Any) -> None:
        try:
            self.fs.write_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
        except HostWriteError as exc:
            raise TuneError(
                f"cannot write the tuning journal {exc.path}: {exc.reason}; nothing was changed "
                "after it (give --journal-dir a writable directory, or run as root)"
            ) from None

    def record(self, entry: Entry) -> Entry:
        """Persist an entry (atomically, fsynced) and return it with its sequence number."""
        if self._next is None:
            self._next = max((e.seq for e in self.entries()), default=0) + 1
        stamped = Entry(**{**asdict(entry), "seq": self._next, "argv": tuple(entry.argv)})
        directory = self._dir(entry.persistent)
        self._ensure(directory)
        self._write_json(f"{directory}/entries/{stamped.seq:08d}.json", asdict(stamped))
        self._next += 1
        return stamped

    def discard(self, entry: Entry) -> None:
        """Forget an entry (undone, or its change never happened)."""
        self.fs.remove(f"{self._dir(entry.persistent)}/entries/{entry.seq:08d}.json")

    def entries(self) -> list[Entry]:
        """Every entry of both directories, oldest first."""
        found: list[Entry] = []
        for directory in (self.volatile_dir, self.persistent_dir):
            folder = f"{directory}/entries"
            if not self.fs.is_dir(folder):
                continue
            for name in self.fs.glob_names(folder, "*.json"):
                path = f"{folder}/{name}"
                try:
                    data = json.loads(self.fs.read(path))
                    data["argv"] = tuple(data.get("argv", ()))
                    found.append(Entry(**data))
                except (HostReadError, ValueError, TypeError) as exc:
                    raise TuneError(
                        f"journal entry {path} is damaged ({exc}); restore it from the "
                        "values shown by `rtkvm host verify`, then delete it"
                    ) from None
        return sorted(found, key=lambda e: e.seq)

    def write_header(self, data: dict[str, Any]) -> None:
        self._ensure(self.persistent_dir)
        self._write_json(f"{self.persistent_dir}/{HEADER}", {"format": FORMAT, **data})

    def stamp_change(self, event: str, header: dict[str, Any] | None = None) -> None:
        """Write the header (``header``, or the one on disk) stamped with ``event`` now:
        an apply finished, or a rollback left entries. Nothing without a header."""
        data = dict(header) if header is not None else self.read_header()
        if data is None:
            return
        data.pop("format", None)
        data[CHANGED] = {"event": event, "ns": time.time_ns()}
        self.write_header(data)

    def fingerprint(self) -> str:
        """The header's text, "" without one: it moves with every apply and rollback.
        Read only, and cheap enough for every agent step (one small file)."""
        path = f"{self.persistent_dir}/{HEADER}"
        try:
            return self.fs.read(path) if self.fs.is_file(path) else ""
        except HostReadError as exc:
            return f"unreadable: {exc}"

    def read_header(self) -> dict[str, Any] | None:
        path = f"{self.persistent_dir}/{HEADER}"
        if not self.fs.is_file(path):
            return None
        try:
            data = json.loads(self.fs.read(path))
        except ValueError as exc:
            raise TuneError(f"{path} is damaged: {exc}") from None
        if not isinstance(data, dict):
            raise TuneError(f"{path} is damaged: not an object")
        return data

    def clear(self) -> None:
        """Remove the header and the (empty) journal directories rtkvm created."""
        if self.entries():
            raise TuneError("the journal still has entries; roll them back first")
        self.fs.remove(f"{self.persistent_dir}/{HEADER}")
        self.fs.remove(f"{self.volatile_dir}/{LOCK}")
        for directory in (self.volatile_dir, self.persistent_dir):
            for path in (f"{directory}/entries", directory):
                self._rmdir_quiet(path)
            parent = directory.rsplit("/", 1)[0]
            if parent.rsplit("/", 1)[-1] == "rtkvm":
                self._rmdir_quiet(parent)

    def _rmdir_quiet(self, path: str) -> None:
        with contextlib.suppress(HostWriteError):  # not empty: something else lives there
            self.fs.remove_dir(path)
