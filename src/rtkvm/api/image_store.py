"""The control plane's image store: one file per image, named by its id, in one directory.

An upload is written to ``ID.part`` while it arrives, counted against the
limit and hashed (sha256) on the way; :meth:`ImageStore.commit` renames it
to ``ID`` once the image was inspected and recorded; a refused or broken
upload is discarded. The directory is the control plane's alone (0700):
agents fetch images through the API. This module must not touch the
database or judge an image (rtkvm.image.inspect does).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from rtkvm.errors import HostWriteError


class TooLargeError(Exception):
    """The upload went over the store's limit."""


@dataclass(frozen=True)
class Received:
    size: int
    sha256: str


class ImageStore:
    """Files of images under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, image_id: str) -> Path:
        return self.root / image_id

    def partial(self, image_id: str) -> Path:
        return self.root / f"{image_id}.part"

    def _ensure(self) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise HostWriteError(str(self.root), exc.strerror or str(exc)) from None

    async def receive(self, image_id: str, chunks: AsyncIterator[bytes], limit: int) -> Received:
        """Write the upload to ``ID.part``; TooLargeError past ``limit`` bytes (the partial
        file is removed on any failure)."""
        self._ensure()
        target = self.partial(image_id)
        digest = hashlib.sha256()
        size = 0
        try:
            with target.open("wb") as out:
                target.chmod(0o600)
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise TooLargeError(size)
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return Received(size, digest.hexdigest())

    def commit(self, image_id: str) -> None:
        self.partial(image_id).replace(self.path(image_id))

    def discard(self, image_id: str) -> None:
        self.partial(image_id).unlink(missing_ok=True)

    def remove(self, image_id: str) -> None:
        """The image's file and any partial upload (none is fine)."""
        self.path(image_id).unlink(missing_ok=True)
        self.discard(image_id)
