"""Disk images as they cross the wire: what a user asks for and sees, what an agent fetches.

:class:`ImageCreate` makes an image's record (the data follows as the body
of a second request); :class:`ImageOut` is what users see; :class:`ImageRef`
is what a node agent needs to fetch and check the image a server boots.
This module must not touch the database, the store or the host.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from rtkvm.wire.base import In as _In
from rtkvm.wire.base import Name

ImageStatus = Literal["queued", "saving", "active", "deleted"]
DISK_GB_MAX = 65536
"""64 TiB: a larger disk is a typo."""


class ImageCreate(_In):
    name: str = Name
    shared: bool = False
    """Every project may boot it; admins only."""
    project: str | None = None
    """Admins only: the project that owns it."""


class ImageOut(BaseModel):
    id: str
    name: str
    project: str
    shared: bool
    status: ImageStatus
    disk_format: Literal["raw", "qcow2"] | None
    size_bytes: int | None
    virtual_size_bytes: int | None
    sha256: str | None
    fault: str | None
    """Why the last upload was refused."""
    in_use: int = 0
    """Live servers whose disks are made over it (it cannot be deleted while any)."""
    created_at: float
    updated_at: float


class ImageRef(BaseModel):
    """The image a server's disk is an overlay of, as its agent fetches and checks it."""

    id: str
    name: str
    disk_format: Literal["raw", "qcow2"]
    size_bytes: int = Field(ge=0)
    virtual_size_bytes: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
