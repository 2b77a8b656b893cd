"""Rows of guests another engine built (their RT verdicts and measurements) as response bodies.

A verdict is ``stale`` when its host's agent has not been heard within the
agent timeout: the guest may have changed since. A measurement is
``emulated`` when its guest ran without KVM. This module must not write.
"""

from __future__ import annotations

import json

from rtkvm.db.models import GuestMeasurement, GuestVerdict, Host
from rtkvm.wire.rtguest import GuestMeasurementOut, GuestVerdictIn, GuestVerdictOut

DETAIL_FIELDS = ("policy", "priority", "rt_vcpus", "reasons", "waived")
"""What a verdict row keeps in its JSON ``detail`` rather than in columns."""


def detail_of(guest: GuestVerdictIn) -> str:
    return json.dumps(guest.model_dump(include=set(DETAIL_FIELDS)), sort_keys=True)


def verdict_out(row: GuestVerdict, host: Host, now: float, timeout: float) -> GuestVerdictOut:
    detail = json.loads(row.detail)
    heard = host.heartbeat_at
    return GuestVerdictOut(
        host=host.name,
        server_id=row.server_id,
        name=row.name,
        domain=row.domain,
        flavor=row.flavor,
        verdict=row.verdict,  # type: ignore[arg-type]
        summary=row.summary,
        policy=detail.get("policy", ""),
        priority=detail.get("priority", 0),
        rt_vcpus=detail.get("rt_vcpus", ""),
        reasons=detail.get("reasons", []),
        waived=detail.get("waived", {}),
        first_seen=row.first_seen,
        checked_at=row.checked_at,
        changed_at=row.changed_at,
        stale=heard is None or now - max(heard, row.checked_at) > timeout,
    )


def measurement_out(row: GuestMeasurement, host: Host) -> GuestMeasurementOut:
    result = json.loads(row.result)
    return GuestMeasurementOut(
        id=row.id,
        host=host.name,
        server_id=row.server_id,
        server_name=row.server_name,
        kind=row.kind,  # type: ignore[arg-type]
        result=result,
        measured_at=row.measured_at,
        emulated=result.get("accel") != "kvm",
    )
