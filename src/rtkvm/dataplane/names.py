"""Safe names for the switch: bridges, vhost-user ports and their socket paths.

Every name the data plane creates is derived here from validated ids, so that
no id can escape the socket directory (no '/', no '..', no leading dot), two
different ids never give the same name (the mapping is injective: the
separator characters cannot occur inside an id), and every kernel-visible
name fits the kernel's 15-byte interface names and every socket path fits
the 107 usable bytes of a unix socket address. Errors say what to change.
This module is pure: it must not touch the filesystem or run anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from rtkvm.errors import NetworkError
from rtkvm.net.names import BRIDGE_PREFIX, check_label

SUN_PATH_MAX = 107
"""Longest unix socket path (sizeof(sun_path) - 1)."""
MAX_NIC_INDEX = 31

PORT_PREFIX = "vhu-"

_GUEST = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}\Z")


def check_guest_id(value: str) -> str:
    """A guest id usable in port and socket names: 1-32 of [a-z0-9_], no '/', '.', '-'."""
    if not _GUEST.match(value):
        raise NetworkError(
            f"guest id {value!r} is not allowed in socket and port names: use 1 to 32 "
            "lower-case letters, digits and '_' (no '/', '.', '-' or spaces), so that it "
            "cannot leave the socket directory or clash with another guest's port"
        )
    return value


def bridge_name(physnet: str) -> str:
    """The OVS bridge that carries one physical network label."""
    return BRIDGE_PREFIX + check_label("physical network", physnet)


@dataclass(frozen=True)
class VhostPortName:
    """A guest NIC on the switch: its OVS port name and vhost-user socket path."""

    guest: str
    nic: int
    port: str
    socket: PurePosixPath


def vhost_port(socket_dir: str | PurePosixPath, guest: str, nic: int) -> VhostPortName:
    """Names for NIC ``nic`` of ``guest``: port ``vhu-<guest>-<nic>``, ``<dir>/<guest>.<nic>.sock``.

    '-' and '.' cannot occur in a guest id, so the names are injective; the
    socket lies directly in ``socket_dir`` (an absolute, normalised directory).
    """
    check_guest_id(guest)
    if isinstance(nic, bool) or not 0 <= nic <= MAX_NIC_INDEX:
        raise NetworkError(f"NIC index {nic!r} of guest {guest!r} is outside 0..{MAX_NIC_INDEX}")
    directory = check_socket_dir(socket_dir)
    socket = directory / f"{guest}.{nic}.sock"
    if len(str(socket).encode()) > SUN_PATH_MAX:
        raise NetworkError(
            f"vhost-user socket path {str(socket)!r} is {len(str(socket).encode())} bytes; "
            f"unix sockets allow {SUN_PATH_MAX}: use a shorter socket directory or guest id"
        )
    return VhostPortName(guest, nic, f"{PORT_PREFIX}{guest}-{nic}", socket)


def check_socket_dir(value: str | PurePosixPath) -> PurePosixPath:
    """An absolute socket directory without '.' or '..' components."""
    text = str(value)
    if not text.startswith("/"):
        raise NetworkError(f"socket directory {text!r} must be an absolute path")
    parts = [p for p in text.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise NetworkError(f"socket directory {text!r} must not contain '.' or '..'")
    return PurePosixPath("/", *parts)


def parse_port_name(port: str) -> tuple[str, int] | None:
    """The (guest, nic) of a port name made by :func:`vhost_port`, or None for other ports."""
    match = re.match(r"^vhu-([a-z0-9_]{1,32})-(\d{1,2})$", port)
    if not match:
        return None
    return match.group(1), int(match.group(2))
