"""A deterministic cpio "newc" archive writer (the initramfs format).

Entries are written sorted by path, with inode numbers assigned in that order,
owner 0:0, one fixed mtime and no host metadata, so that the same entries
always give the same bytes. Directories, regular files, symlinks and
character devices are supported. This module must not read host files: the
caller passes contents as bytes.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One archive member; ``path`` is relative (no leading slash)."""

    path: str
    mode: int
    """Full st_mode: file type bits and permissions."""
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)

    @classmethod
    def directory(cls, path: str, perm: int = 0o755) -> Entry:
        return cls(path.strip("/"), stat.S_IFDIR | perm)

    @classmethod
    def file(cls, path: str, data: bytes, perm: int = 0o644) -> Entry:
        return cls(path.strip("/"), stat.S_IFREG | perm, data)

    @classmethod
    def symlink(cls, path: str, target: str) -> Entry:
        return cls(path.strip("/"), stat.S_IFLNK | 0o777, target.encode())

    @classmethod
    def chardev(cls, path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
        return cls(path.strip("/"), stat.S_IFCHR | perm, b"", (major, minor))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _header(ino: int, entry: Entry, nlink: int, mtime: int, name: bytes) -> bytes:
    fields = (
        ino,
        entry.mode,
        0,  # uid
        0,  # gid
        nlink,
        mtime,
        len(entry.data),
        0,  # devmajor
        0,  # devminor
        entry.rdev[0],
        entry.rdev[1],
        len(name),
        0,  # check
    )
    return MAGIC + b"".join(f"{value:08x}".encode() for value in fields)


def with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """The entries plus a 0755 directory for every missing parent, sorted by path."""
    by_path = {e.path: e for e in entries}
    for path in list(by_path):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            by_path.setdefault(parent, Entry.directory(parent))
    return [by_path[p] for p in sorted(by_path)]


def write_newc(entries: Iterable[Entry], mtime: int) -> bytes:
    """The archive bytes: sorted entries (with parents), then the trailer."""
    out = bytearray()
    ino = 0
    for ino, entry in enumerate(with_parents(entries), start=1):
        name = entry.path.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(entry.mode) else 1
        head = _header(ino, entry, nlink, mtime, name)
        out += head + name + _pad(len(head) + len(name))
        out += entry.data + _pad(len(entry.data))
    name = TRAILER.encode() + b"\0"
    head = _header(ino + 1, Entry(TRAILER, 0), 1, 0, name)
    out += head + name + _pad(len(head) + len(name))
    return bytes(out + _pad(len(out)))


def read_newc(blob: bytes) -> list[tuple[str, int, bytes]]:
    """(path, mode, data) of each member: the inverse of write_newc, for tests and checks."""
    members: list[tuple[str, int, bytes]] = []
    pos = 0
    while True:
        if blob[pos : pos + 6] != MAGIC:
            raise ValueError(f"bad cpio magic at offset {pos}")
        fields = [int(blob[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        start = pos + 110
        name = blob[start : start + namesize - 1].decode()
        pos = start + namesize
        pos += -pos % 4
        data = blob[pos : pos + size]
        pos += size
        pos += -pos % 4
        if name == TRAILER:
            return members
        members.append((name, mode, data))
