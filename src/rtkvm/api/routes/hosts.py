"""Hosts as admins see them: enroll (which returns the agent's own credential),
list, show, set or clear an RT waiver, list what its agent found but the
cloud does not know, remove. Registration and heartbeats are the agent's
(agent.py). An RT waiver lets the scheduler place RT guests on a host that
is not RT-ready (a lab host): setting and clearing it is logged at WARNING,
with the reason. Must not accept reports from agents.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Response
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from rtkvm.api.deps import AdminDep, ServicesDep
from rtkvm.api.errors import ApiError, conflict
from rtkvm.api.qualify import forget_if_changed
from rtkvm.api.security import add_token
from rtkvm.api.views import host_named, host_out, hosts_out, unknown_out
from rtkvm.cpuset import CpuSet
from rtkvm.db.models import (
    ConsoleTicket,
    CpuClaim,
    GuestMeasurement,
    GuestVerdict,
    Host,
    HostDetail,
    HostNode,
    Instance,
    Measurement,
    Qualification,
    Token,
    UnknownResource,
)
from rtkvm.scheduler.claim import lock_host, refresh_capacity
from rtkvm.scheduler.hostdata import rt_capacity
from rtkvm.wire import schemas
from rtkvm.wire.node import OPENSTACK_ENGINE
from rtkvm.wire.secrets import new_secret

router = APIRouter(prefix="/v1/hosts", tags=["hosts"])
log = logging.getLogger("rtkvm.api.hosts")


@router.post("", status_code=201)
def enroll_host(
    body: schemas.HostEnroll, services: ServicesDep, _: AdminDep
) -> schemas.HostEnrolled:
    """Create the host record and its agent token (shown once)."""
    now = services.clock()
    with services.db.write() as s:
        if s.scalar(select(Host.id).where(Host.name == body.name)) is not None:
            raise conflict(
                f"host {body.name!r} is already enrolled: remove it first to get a new token"
            )
        host = Host(
            name=body.name,
            enrolled_at=now,
            doctor_verdict="unknown",
            doctor_failed="[]",
            dataplane_state="unknown",
            physnets="[]",
            rt_free=0,
            node_free_max=0,
            hp2m_free_max=0,
            hp1g_free_max=0,
            mem_free_max=0,
        )
        s.add(host)
        s.flush()
        secret = new_secret()
        add_token(s, secret, now=now, host_id=host.id)
        out = host_out(s, host, now, services.settings.agent_timeout_s)
    return schemas.HostEnrolled(host=out, agent_token=secret)


@router.get("")
def list_hosts(services: ServicesDep, _: AdminDep) -> list[schemas.HostOut]:
    now = services.clock()
    with services.db.read() as s:
        hosts = list(s.scalars(select(Host).order_by(Host.name)))
        return hosts_out(s, hosts, now, services.settings.agent_timeout_s)


@router.get("/{name}")
def show_host(name: str, services: ServicesDep, _: AdminDep) -> schemas.HostOut:
    with services.db.read() as s:
        return host_out(s, host_named(s, name), services.clock(), services.settings.agent_timeout_s)


@router.patch("/{name}")
def update_host(
    name: str, body: schemas.HostUpdate, services: ServicesDep, admin: AdminDep
) -> schemas.HostOut:
    """Set the host's RT waiver (a reason) or clear it (null); on a waived host, how many
    guests may share each RT pCPU (``pcpu_share``).

    A waiver admits the host for RT guests although its doctor verdict is not
    'ready': their latency is not assured. It overrides no other check. Sharing
    pCPUs is only for a waived lab host with fewer RT pCPUs than the guests a
    functional test needs; clearing the waiver sets the share back to 1, which is
    refused while guests share pCPUs.
    """
    given = body.model_fields_set
    if not given & {"rt_waiver", "pcpu_share"}:
        raise ApiError(422, "give rt_waiver (a reason, or null to clear it) and/or pcpu_share")
    with services.db.write() as s:
        host = host_named(s, name)
        if host.engine == OPENSTACK_ENGINE:
            raise ApiError(
                409,
                f"host {name} is an OpenStack compute node: its RT waiver is the node's own "
                "and published to Placement; set it there with `rtkvm openstack waiver set "
                "REASON` (or `clear`)",
            )
        lock_host(s, host.id)
        before = host.rt_waiver
        waiver = body.rt_waiver if "rt_waiver" in given else host.rt_waiver
        share = body.pcpu_share if body.pcpu_share is not None else host.pcpu_share
        if waiver is None:
            if "pcpu_share" in given and share > 1:
                raise ApiError(
                    422,
                    f"pcpu_share {share} is for a lab host under an RT waiver only: give "
                    "rt_waiver (the reason) too, or pcpu_share 1",
                )
            share = 1
        _set_share(s, host, share)
        host.rt_waiver = waiver
        s.flush()
        if forget_if_changed(s, host):
            log.warning(
                "host %s: its qualification no longer holds (%d guests per RT pCPU now): "
                "qualify it again",
                name,
                share,
            )
        out = host_out(s, host, services.clock(), services.settings.agent_timeout_s)
    if out.pcpu_share > 1:
        log.warning(
            "host %s: up to %d guests share each RT pCPU (set by %s): for functional tests "
            "only, their vCPUs preempt each other",
            name,
            out.pcpu_share,
            admin.user_name,
        )
    if "rt_waiver" in given and body.rt_waiver is not None:
        log.warning(
            "RT WAIVER set on host %s by %s: RT guests may be placed there although its "
            "doctor verdict is %r; their latency is not assured. Reason: %s",
            name,
            admin.user_name,
            out.doctor_verdict,
            body.rt_waiver,
        )
    elif "rt_waiver" in given and before is not None:
        log.warning(
            "RT waiver cleared on host %s by %s (was: %s); instances placed under it keep "
            "their note",
            name,
            admin.user_name,
            before,
        )
    return out


def _set_share(session: Session, host: Host, share: int) -> None:
    """Scale the host's RT capacity to ``share`` guests per pCPU; refuse to strand claims."""
    if share == host.pcpu_share:
        return
    top = session.scalar(select(func.max(CpuClaim.slot)).where(CpuClaim.host_id == host.id))
    if top is not None and top + 1 > share:
        raise ApiError(
            409,
            f"host {host.name}: {top + 1} guests share a pCPU; pcpu_share {share} would strand "
            "them: delete those guests first (or keep the waiver and the share)",
        )
    for node in session.scalars(select(HostNode).where(HostNode.host_id == host.id)):
        pcpus = CpuSet.parse(node.rt_pcpus)
        if node.rt_used > rt_capacity(pcpus, share):
            raise ApiError(
                409,
                f"host {host.name} node {node.node}: {node.rt_used} guest pCPUs are claimed, "
                f"more than {len(pcpus)} pCPUs x {share}: delete guests first",
            )
        node.rt_total = rt_capacity(pcpus, share)
    host.pcpu_share = share
    session.flush()
    refresh_capacity(session, host.id)


@router.get("/{name}/unknown")
def list_unknown(name: str, services: ServicesDep, _: AdminDep) -> list[schemas.UnknownResourceOut]:
    """Domains and switch ports the host's agent last reported as not the cloud's."""
    with services.db.read() as s:
        host = host_named(s, name)
        rows = s.scalars(
            select(UnknownResource)
            .where(UnknownResource.host_id == host.id)
            .order_by(UnknownResource.kind, UnknownResource.name)
        )
        return [unknown_out(r) for r in rows]


@router.get("/{name}/plan")
def show_plan(name: str, services: ServicesDep, _: AdminDep) -> schemas.HostPlanOut:
    """The partition plan and topology the host's agent last registered."""
    with services.db.read() as s:
        host = host_named(s, name)
        detail = s.get(HostDetail, host.id)
        if detail is None or host.registered_at is None:
            raise ApiError(
                409, f"host {name} has not been registered by its agent yet: start its agent"
            )
        return schemas.HostPlanOut(
            name=host.name,
            engine=host.engine,  # type: ignore[arg-type]
            registered_at=host.registered_at,
            plan=json.loads(detail.plan),
            topology=json.loads(detail.topology),
        )


@router.delete("/{name}", status_code=204)
def remove_host(name: str, services: ServicesDep, _: AdminDep) -> Response:
    """Idempotent; refused while instances are placed on the host. Revokes its agent token
    and forgets what was measured there (the measurements of its deleted instances)."""
    with services.db.write() as s:
        host = s.scalar(select(Host).where(Host.name == name))
        if host is None:
            return Response(status_code=204)
        placed = s.scalar(
            select(Instance.id)
            .where(Instance.host_id == host.id, Instance.state != "deleted")
            .limit(1)
        )
        if placed is not None:
            raise ApiError(409, f"host {name!r} still has instances: delete or move them first")
        s.execute(delete(CpuClaim).where(CpuClaim.host_id == host.id))
        s.execute(delete(HostNode).where(HostNode.host_id == host.id))
        s.execute(delete(HostDetail).where(HostDetail.host_id == host.id))
        s.execute(delete(UnknownResource).where(UnknownResource.host_id == host.id))
        s.execute(
            delete(Measurement).where(
                or_(Measurement.host_id == host.id, Measurement.peer_host_id == host.id)
            )
        )
        s.execute(delete(Qualification).where(Qualification.host_id == host.id))
        s.execute(delete(GuestVerdict).where(GuestVerdict.host_id == host.id))
        s.execute(delete(GuestMeasurement).where(GuestMeasurement.host_id == host.id))
        s.execute(delete(Token).where(Token.host_id == host.id))
        s.execute(delete(ConsoleTicket).where(ConsoleTicket.host_id == host.id))
        s.execute(update(Instance).where(Instance.host_id == host.id).values(host_id=None))
        s.delete(host)
    return Response(status_code=204)
