"""Keypairs and a server's first-boot inputs as they cross the wire.

:class:`KeypairCreate` / :class:`KeypairOut`: a user's SSH public keys by
name. :class:`SeedDoc` is what a node agent puts on a new server's NoCloud
seed besides the network configuration it derives itself. This module must
not touch the database or the host.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from rtkvm.wire.base import In as _In
from rtkvm.wire.base import Name

USER_DATA_B64_MAX = 87384
"""Base64 characters of 65,535 bytes of user-data (Nova's limit)."""


class KeypairCreate(_In):
    name: str = Name
    public_key: str = Field(min_length=1, max_length=16384)
    """One line of an OpenSSH public key (~/.ssh/id_ed25519.pub)."""


class KeypairOut(BaseModel):
    name: str
    type: str
    fingerprint: str
    public_key: str
    created_at: float


class SeedDoc(BaseModel):
    """A new server's identity and its user's inputs for cloud-init."""

    hostname: str
    public_keys: list[str] = Field(default_factory=list)
    user_data: str | None = None
    """Base64, as the user gave it."""
