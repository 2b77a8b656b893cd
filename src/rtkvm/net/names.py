"""Names of unmanaged L2 networks as the kernel will see them: labels and interface length.

A network name or physical network label becomes a bridge name
(``rt-<label>``) and so must fit the kernel's interface names; the data plane
derives its bridge and port names from these (:mod:`rtkvm.dataplane.names`).
This module is pure: it must not touch the host.
"""

from __future__ import annotations

import re

from rtkvm.errors import NetworkError

IFNAMSIZ = 15
"""Longest Linux interface name (IFNAMSIZ - 1): netdev bridges get a kernel tap of that name."""
BRIDGE_PREFIX = "rt-"

_LABEL = re.compile(r"^[a-z][a-z0-9]{0,11}\Z")


def check_label(kind: str, value: str) -> str:
    """A network name or physical network label: 1-12 of [a-z0-9], starting with a letter."""
    if not _LABEL.match(value):
        raise NetworkError(
            f"{kind} {value!r} is not allowed: use 1 to 12 lower-case letters and digits, "
            f"starting with a letter (it becomes the bridge name {BRIDGE_PREFIX}<{kind}> "
            f"and must fit the kernel's {IFNAMSIZ}-character interface names)"
        )
    return value
