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

import contextlib
import errno
import fcntl
import fnmatch
import os
import stat
from collections.abc import Iterator
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


@dataclass(frozen=True)
class PathInfo:
    """What a host path is: 'file', 'dir', 'device' or 'other', and its size in bytes."""

    kind: str
    size: int


class HostFS:
    """Rooted access to host files, recording every path it reads or lists."""

    def __init__(self, root: str | os.PathLike[str] = "/", *, writable: bool = False) -> None:
        self.root = Path(root)
        self._prefix = "" if str(self.root.resolve()) == "/" else str(self.root).rstrip("/")
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
        return Path(self._local(host_path))

    def _local(self, host_path: str) -> str:
        # String operations, not pathlib: inspection of a large host makes
        # ~10,000 reads and pathlib's joinpath dominated their cost.
        if not host_path.startswith("/"):
            raise ValueError(f"host path must be absolute: {host_path!r}")
        if "/.." in host_path and ".." in host_path.split("/"):
            raise ValueError(f"host path must not contain '..': {host_path!r}")
        return self._prefix + host_path

    # -- reads -----------------------------------------------------------------------

    def read(self, host_path: str) -> str:
        """The text of a host file; raises HostReadError if it cannot be read."""
        self._touched.add(host_path)
        try:
            # O_NONBLOCK and the type check: a FIFO or socket planted in a fake
            # root must give an error, not block the reader forever.
            fd = os.open(self._local(host_path), os.O_RDONLY | os.O_NONBLOCK)
            with open(fd, encoding="utf-8", errors="replace", closefd=True) as handle:
                mode = os.fstat(fd).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
                    kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
                    raise HostReadError(host_path, f"is {kind}")
                return handle.read()
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
        return os.path.exists(self._local(host_path))

    def is_dir(self, host_path: str) -> bool:
        self._touched.add(host_path)
        return os.path.isdir(self._local(host_path))

    def info(self, host_path: str) -> PathInfo | None:
        """What the host path is (following links), or None when it does not exist."""
        self._touched.add(host_path)
        try:
            st = os.stat(self._local(host_path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise HostReadError(host_path, os.strerror(exc.errno or errno.EIO)) from None
        if stat.S_ISREG(st.st_mode):
            kind = "file"
        elif stat.S_ISDIR(st.st_mode):
            kind = "dir"
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            kind = "device"
        else:
            kind = "other"
        return PathInfo(kind, st.st_size)

    def link_name(self, host_path: str) -> str | None:
        """The last component of a symlink's target (a sysfs ``driver`` link names the
        driver), or None when the path is no symlink or does not exist."""
        self._touched.add(host_path)
        try:
            return os.path.basename(os.readlink(self._local(host_path)))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # not a symlink
                return None
            raise HostReadError(host_path, os.strerror(exc.errno or errno.EIO)) from None

    def listdir(self, host_path: str) -> list[str]:
        """Sorted names in a host directory; raises HostReadError if unreadable."""
        self._touched.add(host_path)
        try:
            return sorted(os.listdir(self._local(host_path)))
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

    # -- additions for the tuning engine (journaled writes, created files and dirs) -----

    def _check_writable(self, host_path: str) -> None:
        if not self.writable:
            raise HostWriteError(host_path, "this HostFS is read-only (inspection mode)")

    def is_file(self, host_path: str) -> bool:
        """Whether the host path is a regular file (or a link to one)."""
        self._touched.add(host_path)
        return self.local(host_path).is_file()

    def write_atomic(self, host_path: str, text: str) -> None:
        """Replace a regular file atomically: temp file, fsync, rename, fsync the directory.

        For configuration files and journals, never for /proc or /sys. The mode
        of an existing file is kept; a new file gets 0644.
        """
        self._check_writable(host_path)
        local = self.local(host_path)
        tmp = local.with_name(f".{local.name}.rtkvm-tmp")
        try:
            mode = local.stat().st_mode & 0o7777 if local.exists() else 0o644
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            try:
                os.write(fd, text.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.chmod(mode)
            tmp.replace(local)
            dir_fd = os.open(local.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except FileNotFoundError:
            raise HostWriteError(host_path, "its directory does not exist") from None
        except PermissionError:
            raise HostWriteError(host_path, "permission denied") from None
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise HostWriteError(host_path, os.strerror(exc.errno or errno.EIO)) from None

    def make_dirs(self, host_path: str) -> list[str]:
        """Create a directory and missing parents; returns the created paths, outermost first."""
        self._check_writable(host_path)
        created: list[str] = []
        parts = [p for p in host_path.split("/") if p]
        for depth in range(1, len(parts) + 1):
            sub = "/" + "/".join(parts[:depth])
            local = self.local(sub)
            if local.is_dir():
                continue
            try:
                local.mkdir()
            except FileExistsError:
                raise HostWriteError(sub, "exists and is not a directory") from None
            except PermissionError:
                raise HostWriteError(sub, "permission denied") from None
            except OSError as exc:
                raise HostWriteError(sub, os.strerror(exc.errno or errno.EIO)) from None
            created.append(sub)
        return created

    def remove(self, host_path: str) -> None:
        """Remove a file; a missing file is not an error."""
        self._check_writable(host_path)
        try:
            self.local(host_path).unlink(missing_ok=True)
        except PermissionError:
            raise HostWriteError(host_path, "permission denied") from None
        except OSError as exc:
            raise HostWriteError(host_path, os.strerror(exc.errno or errno.EIO)) from None

    def remove_dir(self, host_path: str) -> None:
        """Remove an empty directory (rmdir: how cgroups are removed); missing is not an error."""
        self._check_writable(host_path)
        try:
            self.local(host_path).rmdir()
        except FileNotFoundError:
            return
        except PermissionError:
            raise HostWriteError(host_path, "permission denied") from None
        except OSError as exc:
            raise HostWriteError(host_path, os.strerror(exc.errno or errno.EIO)) from None

    @contextlib.contextmanager
    def exclusive_lock(self, host_path: str) -> Iterator[None]:
        """Hold an exclusive flock on a (created if missing) file; fails at once if taken.

        The kernel releases the lock when the process dies, so a crash never
        leaves a stale lock behind.
        """
        self._check_writable(host_path)
        try:
            fd = os.open(self.local(host_path), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise HostWriteError(host_path, os.strerror(exc.errno or errno.EIO)) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HostWriteError(host_path, "locked by another process") from None
            yield
        finally:
            os.close(fd)
