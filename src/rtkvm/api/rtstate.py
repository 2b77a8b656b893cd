"""One server's RT state, at a glance: what its agent found, and what its host is now.

The agent checks a guest after every create and start, and again now and
then (:mod:`rtkvm.guest.rtcheck`): ``verified`` or ``degraded`` with why;
``unverified`` until it has. The host can take that away later: on a host
whose doctor no longer says ready, the guest is ``degraded`` (the failed
checks named) or, when an admin waived the host, ``not-assured``. This
module is a pure rule: it must not read the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RtState = Literal["verified", "degraded", "not-assured", "unverified"]
READY = "ready"


@dataclass(frozen=True)
class HostRt:
    """What a host's RT readiness is now."""

    name: str
    verdict: str
    failed: tuple[str, ...]
    waiver: str | None


def rt_state(checked: str, reasons: list[str], host: HostRt | None) -> tuple[RtState, list[str]]:
    """The state and reasons shown for a guest its agent found ``checked`` (with ``reasons``)
    on ``host`` (None: not placed)."""
    state: RtState = checked if checked in ("verified", "degraded") else "unverified"  # type: ignore[assignment]
    out = list(reasons)
    if host is None or host.verdict == READY:
        return state, out
    if host.waiver is not None:
        out.append(f"host {host.name} is not RT-ready and an admin waived it: {host.waiver}")
        return ("degraded" if state == "degraded" else "not-assured"), out
    failed = ", ".join(host.failed) or "its doctor verdict is " + host.verdict
    out.append(f"host {host.name} is no longer RT-ready ({failed}): run `rtkvm host doctor` there")
    return "degraded", out
