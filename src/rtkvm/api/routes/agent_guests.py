"""The agent API for guests another engine built: their RT verdicts and measurements.

An agent in OpenStack mode (its host registered with engine ``openstack``)
reports each round's verdicts as one set, which replaces the host's stored
set (a guest missing from it left the host; ``first_seen`` is kept for the
others), and each measurement it ran in one of them. The node's own RT
waiver comes with the set, so that admins see it as loudly as a waiver set
through the API. A host whose guests rtkvm builds is refused here: its
guests are instances. Must not place, create or delete any guest.
"""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter
from sqlalchemy import delete, select

from rtkvm.api.deps import AgentDep, ServicesDep
from rtkvm.api.errors import ApiError
from rtkvm.api.views_guests import detail_of, measurement_out, verdict_out
from rtkvm.db.models import GuestMeasurement, GuestVerdict, Host
from rtkvm.wire.node import OPENSTACK_ENGINE
from rtkvm.wire.rtguest import (
    GuestMeasurementIn,
    GuestMeasurementOut,
    GuestVerdictOut,
    GuestVerdictReport,
)

router = APIRouter(prefix="/v1/agent/guests", tags=["agent"])


def _other_engines_host(host: Host | None) -> Host:
    if host is None:
        raise ApiError(401, "this agent's host was removed: enroll it again")
    if host.registered_at is None:
        raise ApiError(409, "register the host (PUT /v1/agent/host) before reporting guests")
    if host.engine != OPENSTACK_ENGINE:
        raise ApiError(
            409,
            f"host {host.name} is registered for rtkvm's own guests (engine {host.engine}): "
            "their state is reported per instance; run `rtkvm openstack agent` to register "
            "it as an OpenStack compute node",
        )
    return host


@router.put("/verdicts")
def report_verdicts(
    body: GuestVerdictReport, services: ServicesDep, agent: AgentDep
) -> list[GuestVerdictOut]:
    """Make this host's stored verdicts exactly the report's guests."""
    ids = [g.server_id for g in body.guests]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise ApiError(422, f"guests: server ids {', '.join(twice)} are reported twice")
    now = services.clock()
    with services.db.write() as s:
        host = _other_engines_host(s.get(Host, agent.host_id, with_for_update=True))
        rows = {
            r.server_id: r
            for r in s.scalars(select(GuestVerdict).where(GuestVerdict.host_id == host.id))
        }
        for g in body.guests:
            row = rows.pop(g.server_id, None)
            if row is None:
                row = GuestVerdict(host_id=host.id, server_id=g.server_id, first_seen=now)
                s.add(row)
            if (row.verdict, row.summary) != (g.verdict, g.summary):
                row.changed_at = now
            row.name, row.domain, row.flavor = g.name, g.domain, g.flavor
            row.verdict, row.summary, row.detail = g.verdict, g.summary, detail_of(g)
            row.checked_at = now
        if rows:
            gone = [r.id for r in rows.values()]
            s.execute(delete(GuestVerdict).where(GuestVerdict.id.in_(gone)))
        host.rt_waiver = (body.rt_waiver or "").strip() or None  # blank: no waiver
        s.flush()
        stored = s.scalars(
            select(GuestVerdict).where(GuestVerdict.host_id == host.id).order_by(GuestVerdict.name)
        )
        timeout = services.settings.agent_timeout_s
        return [verdict_out(r, host, now, timeout) for r in stored]


@router.post("/measurements", status_code=201)
def report_measurement(
    body: GuestMeasurementIn, services: ServicesDep, agent: AgentDep
) -> GuestMeasurementOut:
    """Keep a measurement this host's agent ran in one of its guests."""
    latency = body.result.get("latency")
    if body.kind == "cyclictest" and not isinstance(latency, dict):
        raise ApiError(
            422,
            "result: a cyclictest result needs its 'latency' (the shape of "
            "`rtkvm guest measure --save`)",
        )
    now = services.clock()
    with services.db.write() as s:
        host = _other_engines_host(s.get(Host, agent.host_id))
        row = GuestMeasurement(
            id=str(uuid.uuid4()),
            host_id=host.id,
            server_id=body.server_id,
            server_name=body.server_name,
            kind=body.kind,
            result=json.dumps(body.result),
            measured_at=now,
        )
        s.add(row)
        s.flush()
        return measurement_out(row, host)
