"""HostFS: the one seam through which rtkvm touches host files.

Every read of /proc, /sys, /dev and /etc goes through a ``HostFS`` rooted at a
directory: ``/`` for the real host, a captured or synthetic tree in tests and
for ``--root DIR``. Paths given to it are host paths (``/proc/cmdline``); the
root is prepended here and nowhere else. It records what it touched, so that
``rtkvm host capture`` copies exactly the files rtkvm reads.

Writes go through here too, but only on a HostFS created ``writable=True``;
the tuning engine owns the policy of what to write (journal first). This
module must not parse file contents or know what any file means.
"""

from __future__ import annotations

import errno
import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from rtkvm.errors import HostReadError, HostWriteError


@dataclass(frozen=True)
class Unknown:
    """A value rtkvm could not learn; says where it looked and why it failed."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"unknown ({self.source}: {self.reason})"


class HostFS:
    """Rooted access to host files, recording every path it reads or lists."""

    def __init__(self, root: str | os.PathLike[str] = "/", *, writable: bool = False) -> None:
        self.root = Path(root)
        self.writable = writable
        self._touched: set[str] = set()
        if not self.root.is_dir():
            raise HostReadError(str(self.root), "root is not a directory")

    @property
    def is_real_host(self) -> bool:
        """True when rooted at the real ``/``."""
        return self.root.resolve() == Path("/")

    def touched(self) -> frozenset[str]:
        """Host paths read, listed or probed so far (for capture)."""
        return frozenset(self._touched)

    def local(self, host_path: str) -> Path:
        """The local path of a host path under this root."""
        if not host_path.startswith("/"):
            raise ValueError(f"host path must be absolute: {host_path!r}")
        parts = [p for p in host_path.split("/") if p]
        if ".." in parts:
            raise ValueError(f"host path must not contain '..': {host_path!r}")
        return self.root.joinpath(*parts)

    # -- reads -----------------------------------------------------------------------

    def read(self, host_path: str) -> str:
        """The text of a host file; raises HostReadError if it cannot be read."""
        self._touched.add(host_path)
        try:
            return self.local(host_path).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise HostReadError(host_path, "does not exist") from None
        except IsADirectoryError:
            raise HostReadError(host_path, "is a directory") from None
        except PermissionError:
            raise HostReadError(host_path, "permission denied") from None
        except OSError as exc:
            raise HostReadError(host_path, os.strerror(exc.errno or errno.EIO)) from None

    def read_maybe(self, host_path: str) -> str | Unknown:
        """The text of a host file, or Unknown saying why it could not be read."""
        try:
            return self.read(host_path)
        except HostReadError as exc:
            return Unknown(exc.path, exc.reason)

    def read_line(self, host_path: str) -> str | Unknown:
        """The stripped content of a one-line file, or Unknown."""
        text = self.read_maybe(host_path)
        return text if isinstance(text, Unknown) else text.strip()

    def exists(self, host_path: str) -> bool:
        """Whether the host path exists (file, directory or device)."""
        self._touched.add(host_path)
        return self.local(host_path).exists()

    def is_dir(self, host_path: str) -> bool:
        self._touched.add(host_path)
        return self.local(host_path).is_dir()

    def listdir(self, host_path: str) -> list[str]:
        """Sorted names in a host directory; raises HostReadError if unreadable."""
        self._touched.add(host_path)
        try:
            return sorted(p.name for p in self.local(host_path).iterdir())
        except FileNotFoundError:
            raise HostReadError(host_path, "does not exist") from None
        except NotADirectoryError:
            raise HostReadError(host_path, "is not a directory") from None
        except PermissionError:
            raise HostReadError(host_path, "permission denied") from None

    def listdir_maybe(self, host_path: str) -> list[str] | Unknown:
        try:
            return self.listdir(host_path)
        except HostReadError as exc:
            return Unknown(exc.path, exc.reason)

    def glob_names(self, host_dir: str, pattern: str) -> list[str]:
        """Names in ``host_dir`` matching a shell pattern; [] if the directory is absent."""
        if not self.is_dir(host_dir):
            return []
        return [n for n in self.listdir(host_dir) if fnmatch.fnmatchcase(n, pattern)]

    # -- writes ------------------------------------------------------------------------

    def write(self, host_path: str, text: str) -> None:
        """Write text to a host file (sysfs/procfs style: no truncation games)."""
        if not self.writable:
            raise HostWriteError(host_path, "this HostFS is read-only (inspection mode)")
        local = self.local(host_path)
        try:
            with local.open("w", encoding="utf-8") as handle:
                handle.write(text)
        except FileNotFoundError:
            raise HostWriteError(host_path, "does not exist") from None
        except PermissionError:
            raise HostWriteError(host_path, "permission denied") from None
        except OSError as exc:
            raise HostWriteError(host_path, os.strerror(exc.errno or errno.EIO)) from None
