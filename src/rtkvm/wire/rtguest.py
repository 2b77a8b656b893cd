"""Bodies of the RT state of guests another engine built: verdicts and measurements.

In OpenStack mode Nova builds the guests and rtkvm's node agent treats them
(flavor priority applied, threads verified, domain audited) and measures them.
The agent reports each round's verdicts for its host as one set
(:class:`GuestVerdictReport`: a guest missing from it has left the host) and
each measurement it ran (:class:`GuestMeasurementIn`); admins read them back
as :class:`GuestVerdictOut` and :class:`GuestMeasurementOut`. The API keeps
this state; it never places, creates or deletes those guests. This module
must not touch the database.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from rtkvm.wire.base import In as _In
from rtkvm.wire.measure import MeasurementKind

RtVerdict = Literal["verified", "degraded", "not-rt"]
"""``verified``: the flavor's RT scheduling is in effect and the audit passed (but for the
host's known waivers); ``degraded``: something does not hold, each reason given;
``not-rt``: the flavor asks for no real time."""

GUESTS_MAX = 1000
"""The most guests one host reports (far more than its RT pCPUs can hold)."""

SERVER_ID = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")


class GuestVerdictIn(_In):
    """One guest as the agent found it this round."""

    server_id: str = SERVER_ID
    """The engine's id of the guest (Nova's instance uuid, also the domain's uuid)."""
    name: str = Field(max_length=255)
    domain: str = Field(min_length=1, max_length=64)
    """The libvirt domain's name on the host."""
    flavor: str = Field(default="", max_length=255)
    verdict: RtVerdict
    summary: str = Field(max_length=255)
    """The one line also written on the Nova server (metadata ``rtkvm_rt``)."""
    policy: str = Field(default="", max_length=8)
    priority: int = Field(default=0, ge=0, le=99)
    rt_vcpus: str = Field(default="", max_length=1024)
    reasons: list[str] = Field(default_factory=list, max_length=256)
    """Why degraded; empty when verified."""
    waived: dict[str, str] = Field(default_factory=dict, max_length=64)
    """Audit rules that failed because of a host quirk: rule -> quirk."""
    applied: list[str] = Field(default_factory=list, max_length=256)
    """Threads whose scheduling the agent changed this round."""


class GuestVerdictReport(_In):
    """All guests of the agent's host this round: the API's set for the host becomes this."""

    guests: list[GuestVerdictIn] = Field(default_factory=list, max_length=GUESTS_MAX)
    rt_waiver: str | None = Field(default=None, max_length=500)
    """The node's own RT waiver in effect (``rtkvm openstack waiver``); None: none."""


class GuestVerdictOut(BaseModel):
    host: str
    server_id: str
    name: str
    domain: str
    flavor: str
    verdict: RtVerdict
    summary: str
    policy: str
    priority: int
    rt_vcpus: str
    reasons: list[str]
    waived: dict[str, str]
    first_seen: float
    checked_at: float
    """The agent's last round that saw the guest."""
    changed_at: float
    """When the verdict last changed."""
    stale: bool
    """The host's agent has not reported within the agent timeout: the verdict may be old."""


class GuestMeasurementIn(_In):
    """A measurement the agent ran in one of its host's guests."""

    server_id: str = SERVER_ID
    server_name: str = Field(max_length=255)
    kind: MeasurementKind = "cyclictest"
    result: dict[str, Any]
    """The shape of ``rtkvm guest measure --save`` (cyclictest)."""


class GuestMeasurementOut(BaseModel):
    id: str
    host: str
    server_id: str
    server_name: str
    kind: MeasurementKind
    result: dict[str, Any]
    measured_at: float
    emulated: bool
    """The guest ran without KVM (TCG): its figures say nothing of real-time latency."""


class GuestDetailOut(BaseModel):
    """One guest's verdict (None: no host reports it now) and its measurements, newest first."""

    server_id: str
    verdict: GuestVerdictOut | None
    measurements: list[GuestMeasurementOut]
