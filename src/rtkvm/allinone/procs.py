"""Background processes of ``rtkvm up``: start with a pid file and a log, find, stop.

A process is "ours" when its pid file names a live, non-zombie process whose
command line mentions the state directory (so a recycled pid is never taken
for the API or the agent); anything else makes the pid file stale. /proc is
read through :class:`~rtkvm.hostfs.HostFS`. This module must not decide what
to run (the stack does) and never signals a process it cannot prove is ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rtkvm.errors import AllInOneError
from rtkvm.hostfs import HostFS, Unknown


@dataclass(frozen=True)
class Stopped:
    """How a stop went: ``stopped`` (SIGTERM), ``killed`` (SIGKILL after the wait),
    ``not running`` (no pid file) or ``stale`` (a pid file naming no process of ours)."""

    name: str
    how: str
    pid: int | None = None
    seconds: float = 0.0


class Proc:
    """One named background process (``api`` or ``agent``) of a state directory."""

    def __init__(
        self,
        name: str,
        pid_file: Path,
        log_file: Path,
        marker: str,
        fs: HostFS,
        *,
        group: bool = False,
    ) -> None:
        self.name = name
        self.group = group
        """Signal the process's whole session (a wrapper script and what it started)."""
        self.pid_file = pid_file
        self.log_file = log_file
        self.marker = marker
        """A string its command line contains (the state directory)."""
        self.fs = fs

    def recorded_pid(self) -> int | None:
        """The pid in the pid file, or None (no file, or not a number)."""
        try:
            text = self.pid_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def pid(self) -> int | None:
        """The pid of the running process, or None when it does not run."""
        pid = self.recorded_pid()
        if pid is None or not self.is_ours(pid):
            return None
        return pid

    def is_ours(self, pid: int) -> bool:
        stat = self.fs.read_maybe(f"/proc/{pid}/stat")
        if isinstance(stat, Unknown) or ")" not in stat:
            return False
        fields = stat.rsplit(")", 1)[1].split()
        if not fields or fields[0] in ("Z", "X"):
            return False
        cmdline = self.fs.read_maybe(f"/proc/{pid}/cmdline")
        return not isinstance(cmdline, Unknown) and self.marker in cmdline.replace("\0", " ")

    def stale(self) -> int | None:
        """The pid of a pid file that names no process of ours (removed), else None."""
        pid = self.recorded_pid()
        if self.pid_file.exists() and (pid is None or not self.is_ours(pid)):
            self.pid_file.unlink(missing_ok=True)
            return pid if pid is not None else -1
        return None

    def start(self, argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """Start ``argv`` in its own session, output appended to the log, pid file written."""
        with self.log_file.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n", encoding="utf-8")
        return proc

    def tail(self, lines: int = 15) -> str:
        """The last lines of the log (for a process that died)."""
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"(no log at {self.log_file})"
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])

    def died(self, proc: subprocess.Popen[bytes]) -> AllInOneError:
        """The error for a process that exited while starting, with its log's last lines."""
        self.pid_file.unlink(missing_ok=True)
        return AllInOneError(
            f"the {self.name} process exited at start (status {proc.returncode}); "
            f"last lines of {self.log_file}:\n{self.tail()}"
        )

    def stop(self, wait: float = 20.0) -> Stopped:
        """SIGTERM, wait up to ``wait`` s, then SIGKILL; the pid file is removed."""
        pid = self.recorded_pid()
        if not self.pid_file.exists():
            return Stopped(self.name, "not running")
        if pid is None or not self.is_ours(pid):
            self.pid_file.unlink(missing_ok=True)
            return Stopped(self.name, "stale", pid)
        started = time.monotonic()
        _signal(pid, signal.SIGTERM, self.group)
        how = "stopped"
        if not self._gone(pid, wait):
            _signal(pid, signal.SIGKILL, self.group)
            how = "killed"
            if not self._gone(pid, 5.0):
                raise AllInOneError(f"the {self.name} process {pid} survived SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        return Stopped(self.name, how, pid, time.monotonic() - started)

    def _gone(self, pid: int, limit: float) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            _reap(pid)
            if not self.is_ours(pid) and not self._group_left(pid):
                return True
            time.sleep(0.1)
        return not self.is_ours(pid) and not self._group_left(pid)

    def _group_left(self, pgid: int) -> bool:
        """With ``group``: is any process of the session's group still alive?"""
        if not self.group:
            return False
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _signal(pid: int, sig: int, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, sig)  # started with start_new_session: its pid is the group's
        else:
            os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect a child of this very process (it started it in the same run), if it is one."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
