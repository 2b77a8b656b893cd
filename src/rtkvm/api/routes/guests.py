"""Admins' view of guests another engine (Nova) built: RT verdicts and measurements.

``GET /v1/guest-verdicts`` lists what the OpenStack-mode agents last found
(``?host=``, ``?verdict=`` narrow it); ``GET /v1/guest-verdicts/{server_id}``
gives one guest with its measurements, newest first; ``GET
/v1/guest-measurements`` lists measurements (``?server=``). Those guests
belong to the other engine's projects, not to rtkvm's, so only admins see
them. Must not write.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from rtkvm.api.deps import AdminDep, ServicesDep
from rtkvm.api.errors import not_found
from rtkvm.api.views import host_named
from rtkvm.api.views_guests import measurement_out, verdict_out
from rtkvm.db.models import GuestMeasurement, GuestVerdict, Host
from rtkvm.wire.rtguest import (
    SERVER_ID,
    GuestDetailOut,
    GuestMeasurementOut,
    GuestVerdictOut,
    RtVerdict,
)

router = APIRouter(tags=["guests"])

MEASUREMENTS_MAX = 100
NOT_KNOWN = " (no OpenStack-mode agent reports it, and it was never measured)"


@router.get("/v1/guest-verdicts")
def list_verdicts(
    services: ServicesDep,
    _: AdminDep,
    host: Annotated[str | None, Query(max_length=64)] = None,
    verdict: RtVerdict | None = None,
) -> list[GuestVerdictOut]:
    now, timeout = services.clock(), services.settings.agent_timeout_s
    with services.db.read() as s:
        query = select(GuestVerdict, Host).join(Host, Host.id == GuestVerdict.host_id)
        if host is not None:
            query = query.where(GuestVerdict.host_id == host_named(s, host).id)
        if verdict is not None:
            query = query.where(GuestVerdict.verdict == verdict)
        rows = s.execute(query.order_by(Host.name, GuestVerdict.name, GuestVerdict.server_id))
        return [verdict_out(v, h, now, timeout) for v, h in rows]


@router.get("/v1/guest-verdicts/{server_id}")
def show_guest(
    server_id: Annotated[str, SERVER_ID], services: ServicesDep, _: AdminDep
) -> GuestDetailOut:
    """The guest's verdict (None when no host reports it now) and its measurements."""
    now, timeout = services.clock(), services.settings.agent_timeout_s
    with services.db.read() as s:
        found = s.execute(
            select(GuestVerdict, Host)
            .join(Host, Host.id == GuestVerdict.host_id)
            .where(GuestVerdict.server_id == server_id)
            .order_by(GuestVerdict.checked_at.desc())
            .limit(1)
        ).first()
        measured = _measurements(s, server_id)
        if found is None and not measured:
            raise not_found("guest", server_id, NOT_KNOWN)
        verdict = verdict_out(found[0], found[1], now, timeout) if found else None
        return GuestDetailOut(server_id=server_id, verdict=verdict, measurements=measured)


@router.get("/v1/guest-measurements")
def list_measurements(
    services: ServicesDep,
    _: AdminDep,
    server: Annotated[str | None, Query(max_length=64)] = None,
) -> list[GuestMeasurementOut]:
    with services.db.read() as s:
        return _measurements(s, server)


def _measurements(s: Session, server_id: str | None) -> list[GuestMeasurementOut]:
    """Newest first, at most MEASUREMENTS_MAX."""
    query = select(GuestMeasurement, Host).join(Host, Host.id == GuestMeasurement.host_id)
    if server_id is not None:
        query = query.where(GuestMeasurement.server_id == server_id)
    query = query.order_by(GuestMeasurement.measured_at.desc()).limit(MEASUREMENTS_MAX)
    return [measurement_out(m, h) for m, h in s.execute(query)]
