"""Lookups and views of measurements: rows to MeasurementOut and AgentMeasurement.

Visibility follows instances (rtkvm.api.views): a member sees its project's
measurements, an admin all; an id the caller may not see is a 404, so ids
of other projects do not leak. Instances are named by id or by a name unique
in the caller's project. This module must not write.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtkvm.api.deps import Principal
from rtkvm.api.errors import ApiError, not_found
from rtkvm.api.views import agent_instance, instance_for
from rtkvm.db.models import Host, Instance, Measurement, Network, Project
from rtkvm.wire.measure import AgentMeasurement, MeasurementOut, MeasurementRole
from rtkvm.wire.uuids import is_uuid

BUSY_STATES = ("queued", "running")
"""A measurement in these states holds its instances: no second one may start."""


def instance_ref(session: Session, ref: str, caller: Principal) -> Instance:
    """An instance by id (any the caller may see) or by name in the caller's project."""
    if is_uuid(ref):
        return instance_for(session, ref.lower(), caller)
    matches = list(
        session.scalars(
            select(Instance)
            .where(
                Instance.name == ref,
                Instance.project_id == caller.project_id,
                Instance.state != "deleted",
            )
            .order_by(Instance.created_at, Instance.id)
        )
    )
    if not matches:
        raise not_found("instance", ref, " (list them with `rtkvm cloud server list`)")
    if len(matches) > 1:
        ids = ", ".join(i.id for i in matches)
        raise ApiError(
            409, f"{len(matches)} instances are named {ref!r} ({ids}): give the id instead"
        )
    return matches[0]


def measurement_for(session: Session, measurement_id: str, caller: Principal) -> Measurement:
    """The measurement if the caller may see it; 404 (not 403) so ids do not leak."""
    if not is_uuid(measurement_id):
        raise not_found("measurement", measurement_id, " (measurement ids are UUIDs)")
    m = session.get(Measurement, measurement_id.lower())
    if m is None or (not caller.is_admin and m.project_id != caller.project_id):
        hint = " (list them with `rtkvm cloud measure list`)"
        raise not_found("measurement", measurement_id, hint)
    return m


def waiver_of(*instances: Instance | None) -> str | None:
    """The RT waivers of the measured instances' hosts, when any was placed under one."""
    texts: list[str] = []
    for inst in instances:
        if inst is not None and inst.rt_waiver and inst.rt_waiver not in texts:
            texts.append(inst.rt_waiver)
    return "; ".join(texts) if texts else None


def _loads(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    data = json.loads(text)
    return data if isinstance(data, dict) else {"value": data}


def measurement_out(session: Session, m: Measurement) -> MeasurementOut:
    server = session.get(Instance, m.instance_id)
    peer = session.get(Instance, m.peer_instance_id) if m.peer_instance_id else None
    project = session.get(Project, m.project_id)
    host = session.get(Host, m.host_id)
    net = session.get(Network, m.network_id) if m.network_id is not None else None
    return MeasurementOut(
        id=m.id,
        kind=m.kind,  # type: ignore[arg-type]
        state=m.state,  # type: ignore[arg-type]
        project=project.name if project else "",
        server=m.instance_id,
        server_name=server.name if server else "",
        peer=m.peer_instance_id,
        peer_name=peer.name if peer else None,
        network=net.name if net else None,
        host=host.name if host else None,
        params=_loads(m.params) or {},
        result=_loads(m.result),
        fault=m.fault,
        rt_waiver=waiver_of(server, peer),
        created_at=m.created_at,
        started_at=m.started_at,
        finished_at=m.finished_at,
        qualification=m.qualification_id,
        peer_host=_host_name(session, m.peer_host_id),
        peer_state=m.peer_state,  # type: ignore[arg-type]
        peer_result=_loads(m.peer_result),
        peer_fault=m.peer_fault,
    )


def _host_name(session: Session, host_id: int | None) -> str | None:
    host = session.get(Host, host_id) if host_id is not None else None
    return host.name if host else None


def role_of(m: Measurement, host_id: int) -> MeasurementRole:
    """What the agent of ``host_id`` does in ``m``: all of it, the client or the server."""
    if m.peer_host_id is None:
        return "both"
    return "serve" if host_id == m.peer_host_id else "client"


def agent_measurement(
    session: Session, m: Measurement, role: MeasurementRole = "both"
) -> AgentMeasurement:
    """What an agent is told of ``m``; for the serving half of an rtt across hosts
    (``role`` serve), ``state`` is that half's (queued, or running while it serves)."""
    server = session.get(Instance, m.instance_id)
    assert server is not None  # a foreign key; instances are never removed
    peer = session.get(Instance, m.peer_instance_id) if m.peer_instance_id else None
    net = session.get(Network, m.network_id) if m.network_id is not None else None
    state, partner = m.state, m.peer_state
    if role == "serve":
        state = m.peer_state if m.peer_state in ("queued", "done", "error") else "running"
        partner = m.state
    return AgentMeasurement(
        id=m.id,
        kind=m.kind,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        role=role,
        partner_state=partner,  # type: ignore[arg-type]
        params=_loads(m.params) or {},
        server=agent_instance(session, server),
        peer=agent_instance(session, peer) if peer is not None else None,
        network=net.name if net else None,
    )
