"""How an instance is named on its host: libvirt domain name and UUID, switch guest id.

The domain's UUID is the instance id, so that reconciliation finds an
instance's domain by UUID whatever its name. The switch's guest id is the
id without dashes (32 hex digits: what ``rtkvm.dataplane.names`` accepts in
port and socket names). Pure: this module must not talk to libvirt or the
switch.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from rtkvm.errors import InputError

DOMAIN_PREFIX = "rtkvm-"


def _canonical(instance_id: str) -> str:
    try:
        return str(uuid.UUID(instance_id))
    except ValueError:
        raise InputError(f"instance id {instance_id!r} is not a UUID") from None


def domain_name(instance_id: str) -> str:
    """``rtkvm-<uuid>``: the libvirt domain of an instance."""
    return DOMAIN_PREFIX + _canonical(instance_id)


def guest_id(instance_id: str) -> str:
    """The instance's id in switch port and socket names (hex, no dashes)."""
    return uuid.UUID(_canonical(instance_id)).hex


def nic_mac(instance_id: str, nic: int) -> str:
    """A stable locally administered MAC (QEMU's 52:54:00 prefix) per instance NIC."""
    digest = hashlib.sha256(f"{_canonical(instance_id)}/{nic}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


SOCKET_PATH_MAX = 107
"""The longest unix socket path the kernel takes (``sun_path`` is 108 bytes with its NUL)."""


def console_socket(guest_dir: Path, instance_id: str) -> Path | None:
    """The unix socket QEMU serves the instance's serial console on, beside its serial log;
    None when that path would be too long for a unix socket (a deep test directory)."""
    path = guest_dir / f"{domain_name(instance_id)}.console.sock"
    return path if len(str(path).encode()) <= SOCKET_PATH_MAX else None
