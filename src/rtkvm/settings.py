"""Settings of the control plane (API server, scheduler), as one typed value.

:class:`Settings` is passed explicitly to ``create_app`` and to the CLI
client; nothing reads the environment behind the caller's back except
:meth:`Settings.from_env`, which the server entry point calls once. This
module must not open the database or start anything.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rtkvm.errors import InputError
from rtkvm.footprint import DATABASE_FILE, IMAGE_STORE_DIR

DEFAULT_DB = f"sqlite:///{DATABASE_FILE.path}"


SECONDS_FROM_ENV = (
    ("RTKVM_AGENT_TIMEOUT", "agent_timeout_s", "60"),
    ("RTKVM_TOKEN_LIFETIME", "token_lifetime_s", "2592000 (30 days)"),
    ("RTKVM_REQUEST_TIMEOUT", "request_read_timeout_s", "30"),
    ("RTKVM_FAILED_CREATE_RETENTION", "failed_create_retention_s", "86400 (a day)"),
    ("RTKVM_REQUIRE_QUALIFIED_WITHIN", "qualified_within_s", "2592000 (30 days)"),
)
"""Environment variables that set a duration: (name, setting, an example for the error)."""


class Settings(BaseModel):
    """What the API server needs to run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = DEFAULT_DB
    """SQLAlchemy URL: ``sqlite:///PATH`` (one file, WAL) or ``postgresql+psycopg://...``."""
    agent_timeout_s: float = Field(default=60.0, gt=0)
    """A host whose agent has not sent a heartbeat for this long is down."""
    weigher: Literal["pack", "spread"] = "pack"
    """pack: fill busy hosts first (keeps whole hosts free); spread: least-loaded first."""
    qualified_within_s: float | None = Field(default=None, gt=0)
    """When set, RT servers go only to hosts whose qualification (``rtkvm cloud host
    qualify``) passed at most this many seconds ago, for the plan and wiring they have now;
    None: qualification is not required (it is still recorded and shown)."""
    schedule_attempts: int = Field(default=16, ge=1, le=100)
    """How many claim transactions a create tries (over candidates) before it gives up."""
    host_reserved_memory_mib: int = Field(default=1024, ge=0, le=2**20)
    """RAM of each host NUMA node kept for the host (kernel, QEMU's own memory, agents):
    guests with 4k pages are placed only on what is left beside the hugepage pools."""
    sqlite_busy_timeout_ms: int = Field(default=30000, ge=0)
    token_lifetime_s: float | None = Field(default=None, gt=0)
    """How long a user token made without its own lifetime is accepted; None: until revoked.
    Agent tokens never expire on their own (a host must not drop out of the cloud)."""
    auth_failures_per_minute: int = Field(default=20, ge=1)
    """Failed authentications one client address may make per minute before it is refused
    (429) for the rest of that minute."""
    failed_create_retention_s: float = Field(default=86400.0, gt=0)
    """How long a create refused before placement (no host could take it) stays listed
    with its fault; then it is hidden like a deleted instance."""
    scheduling_stale_s: float = Field(default=120.0, gt=0)
    """An instance still 'scheduling' after this long lost its API process (a crash between
    its creation and its claim, which holds nothing): it is failed, so it does not hang."""
    bootstrap_admin_token: str | None = None
    """When set and no admin exists yet, an admin user 'admin' with this token is created."""
    bootstrap_token_lifetime_s: float = Field(default=86400.0, gt=0)
    """How long the bootstrap token is accepted after it made the admin: issue the admins'
    own tokens with it (`rtkvm cloud token issue`) within that time."""
    request_read_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """Seconds a client has to send one whole request once the server is ready for it
    (connection made, or previous response sent); then the connection is closed, so idle
    and half-open connections cannot pile up."""
    connections_per_source: int = Field(default=256, ge=1, le=100_000)
    """Connections one client address may hold open at once; more are closed on arrival."""
    migrate_on_start: bool = True
    image_store_dir: str = IMAGE_STORE_DIR.path
    """Where uploaded images are kept (one file per image). Every API process of a cloud
    must see the same directory: one host, or a shared filesystem."""
    image_max_bytes: int = Field(default=64 * 2**30, ge=1)
    """The largest upload accepted (bytes on the wire; 64 GiB)."""
    image_max_virtual_bytes: int = Field(default=2 * 2**40, ge=1)
    """The largest virtual disk an image may describe (2 TiB): a qcow2 of a few KiB can
    claim exabytes."""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read RTKVM_DATABASE_URL, RTKVM_AGENT_TIMEOUT, RTKVM_TOKEN_LIFETIME,
        RTKVM_REQUEST_TIMEOUT, RTKVM_FAILED_CREATE_RETENTION, RTKVM_REQUIRE_QUALIFIED_WITHIN,
        RTKVM_CONNECTIONS_PER_SOURCE,
        RTKVM_WEIGHER, RTKVM_ADMIN_TOKEN, RTKVM_IMAGE_STORE."""
        src = dict(os.environ if env is None else env)
        fields: dict[str, object] = {}
        if "RTKVM_DATABASE_URL" in src:
            fields["database_url"] = src["RTKVM_DATABASE_URL"]
        for name, field, example in SECONDS_FROM_ENV:
            if name in src:
                try:
                    fields[field] = float(src[name])
                except ValueError:
                    raise InputError(
                        f"{name}={src[name]!r}: give seconds, e.g. {example}"
                    ) from None
        if "RTKVM_CONNECTIONS_PER_SOURCE" in src:
            value = src["RTKVM_CONNECTIONS_PER_SOURCE"]
            if not value.isdigit():
                raise InputError(
                    f"RTKVM_CONNECTIONS_PER_SOURCE={value!r}: give a whole number, e.g. 256"
                )
            fields["connections_per_source"] = int(value)
        if "RTKVM_WEIGHER" in src:
            fields["weigher"] = src["RTKVM_WEIGHER"]
        if "RTKVM_ADMIN_TOKEN" in src:
            fields["bootstrap_admin_token"] = src["RTKVM_ADMIN_TOKEN"]
        if "RTKVM_IMAGE_STORE" in src:
            fields["image_store_dir"] = src["RTKVM_IMAGE_STORE"]
        try:
            return cls.model_validate(fields)
        except Exception as exc:
            raise InputError(f"bad control plane settings: {exc}") from None
