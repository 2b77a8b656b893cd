"""Hosts as admins see them: enroll (which returns the agent's own credential),
list, show, remove. Registration and heartbeats are the agent's (agent.py).
Must not accept reports from agents."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import delete, select, update

from rtkvm.api import schemas
from rtkvm.api.deps import AdminDep, ServicesDep
from rtkvm.api.errors import ApiError, conflict
from rtkvm.api.security import add_token, new_secret
from rtkvm.api.views import host_named, host_out
from rtkvm.db.models import CpuClaim, Host, HostDetail, HostNode, Instance, Token

router = APIRouter(prefix="/v1/hosts", tags=["hosts"])


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
        return [host_out(s, h, now, services.settings.agent_timeout_s) for h in hosts]


@router.get("/{name}")
def show_host(name: str, services: ServicesDep, _: AdminDep) -> schemas.HostOut:
    with services.db.read() as s:
        return host_out(s, host_named(s, name), services.clock(), services.settings.agent_timeout_s)


@router.delete("/{name}", status_code=204)
def remove_host(name: str, services: ServicesDep, _: AdminDep) -> Response:
    """Idempotent; refused while instances are placed on the host. Revokes its agent token."""
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
        s.execute(delete(Token).where(Token.host_id == host.id))
        s.execute(update(Instance).where(Instance.host_id == host.id).values(host_id=None))
        s.delete(host)
    return Response(status_code=204)
