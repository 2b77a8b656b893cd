"""This host's copies of the images its servers' disks are made over, fetched once.

:class:`BaseImages` keeps each image as ``SHA256.FORMAT`` under the base
directory: fetched through the control plane's port (:data:`ImageFetch`)
into a partial file (refused when the file system would keep less than
:data:`RESERVE_BYTES` free), checked against the size and sha256 the API
recorded (a mismatch is an error, and nothing is kept), then made read-only
and put in place. :meth:`BaseImages.prepare` does this in a background
thread, so a large image never holds up the agent's loop (its heartbeats).
A base already there is used as it is: its name is its content.
:func:`disk_path` and :func:`seed_path` name a server's overlay and seed.
This module must not make overlays (rtkvm.guest.disk does) or decide which
server gets which image.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rtkvm.errors import GuestError, HostWriteError, RtkvmError
from rtkvm.wire.images import ImageRef

log = logging.getLogger("rtkvm.agent.images")

RESERVE_BYTES = 1 << 30
"""Space left free on the guest directory's file system after a base is fetched: the
servers' copy-on-write disks grow into it."""
KEEP_UNUSED_S = 86400.0
"""How long a base no disk uses is kept for the next server of that image (Nova's
remove_unused_original_minimum_age_seconds is the same day)."""
QCOW2_MAGIC = b"QFI\xfb"

ImageFetch = Callable[[str, Path], None]
"""Fetch image ID's data into a file (the agent's client asks the API for it)."""


def disk_path(guest_dir: Path, domain: str) -> Path:
    """A server's own copy-on-write disk, beside its serial log."""
    return guest_dir / f"{domain}.disk.qcow2"


def seed_path(guest_dir: Path, domain: str) -> Path:
    """A server's NoCloud seed (a small FAT disk), beside its disk."""
    return guest_dir / f"{domain}.seed.img"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while piece := data.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


class BaseImages:
    """Read-only bases under ``root``, named by their sha256."""

    def __init__(self, root: Path, fetch: ImageFetch) -> None:
        self.root = root
        self.fetch = fetch
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Thread] = {}
        self._failed: dict[str, str] = {}

    def prepare(self, ref: ImageRef) -> Path | None:
        """The base of ``ref`` if it is here; else None, while a background thread fetches
        and checks it (the agent's loop goes on: heartbeats, other guests). A fetch that
        failed raises its GuestError once; the next call tries again."""
        final = self.path(ref)
        if final.is_file() and final.stat().st_size == ref.size_bytes:
            os.utime(final)
            return final
        with self._lock:
            failed = self._failed.pop(ref.sha256, None)
            if failed is not None:
                raise GuestError(failed)
            running = self._fetching.get(ref.sha256)
            if running is not None and running.is_alive():
                return None
            worker = threading.Thread(
                target=self._fetch_quietly,
                args=(ref,),
                name=f"fetch-{ref.sha256[:12]}",
                daemon=True,
            )
            self._fetching[ref.sha256] = worker
            worker.start()
        log.info(
            "fetching image %s (%s, %d bytes) in the background", ref.name, ref.id, ref.size_bytes
        )
        return None

    def wait(self, timeout: float | None = None) -> None:
        """Let the background fetches end (tests, shutdown)."""
        with self._lock:
            workers = list(self._fetching.values())
        for worker in workers:
            worker.join(timeout)

    def _fetch_quietly(self, ref: ImageRef) -> None:
        try:
            self.ensure(ref)
        except (RtkvmError, OSError) as exc:
            with self._lock:
                self._failed[ref.sha256] = f"fetching image {ref.name} failed: {exc}"

    def path(self, ref: ImageRef) -> Path:
        return self.root / f"{ref.sha256}.{ref.disk_format}"

    def ensure(self, ref: ImageRef) -> Path:
        """The base of ``ref`` on this host, fetched and checked when missing."""
        final = self.path(ref)
        if final.is_file() and final.stat().st_size == ref.size_bytes:
            os.utime(final)  # used now: kept KEEP_UNUSED_S from here
            return final
        try:
            self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            raise HostWriteError(str(self.root), exc.strerror or str(exc)) from None
        partial = final.with_name(final.name + ".part")
        free = shutil.disk_usage(self.root).free
        if free < ref.size_bytes + RESERVE_BYTES:
            raise GuestError(
                f"image {ref.name} needs {ref.size_bytes} bytes in {self.root} and "
                f"{RESERVE_BYTES} to spare for disks, but its file system has {free} free: "
                "free space on this host (deleted servers' bases go a day after their last use)"
            )
        try:
            self.fetch(ref.id, partial)
            size = partial.stat().st_size
            if size != ref.size_bytes:
                raise GuestError(
                    f"image {ref.name} ({ref.id}) arrived with {size} bytes, the API recorded "
                    f"{ref.size_bytes}: not used (a hard reboot of the server fetches it again)"
                )
            found = _sha256(partial)
            if found != ref.sha256:
                raise GuestError(
                    f"image {ref.name} ({ref.id}) arrived with sha256 {found}, the API recorded "
                    f"{ref.sha256}: not used (a hard reboot of the server fetches it again)"
                )
            partial.chmod(0o444)
            partial.replace(final)
        finally:
            partial.unlink(missing_ok=True)
        return final

    def prune(self, guest_dir: Path, *, keep_s: float = KEEP_UNUSED_S) -> list[Path]:
        """Delete the bases no disk in ``guest_dir`` is made over and none used for
        ``keep_s`` seconds; returns what was deleted."""
        if not self.root.is_dir():
            return []
        used = {backing_file(disk) for disk in guest_dir.glob("*.disk.qcow2")}
        gone: list[Path] = []
        now = time.time()
        for base in self.root.iterdir():
            if base.name.endswith(".part") or str(base) in used:
                continue
            if now - base.stat().st_mtime < keep_s:
                continue
            base.unlink(missing_ok=True)
            log.info("deleted the image base %s: no disk uses it", base.name)
            gone.append(base)
        return gone


def backing_file(overlay: Path) -> str | None:
    """The backing file a qcow2 names in its header (read without qemu-img), or None."""
    try:
        with overlay.open("rb") as data:
            header = data.read(20)
            if len(header) < 20 or header[:4] != QCOW2_MAGIC:
                return None
            offset, size = struct.unpack(">QI", header[8:20])
            if not offset or not 0 < size <= 1023:
                return None
            data.seek(offset)
            return data.read(size).decode("utf-8", "replace")
    except OSError:
        return None
