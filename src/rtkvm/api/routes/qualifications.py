"""Host qualifications: an admin begins one, its measurements are made for it, the API judges.

``POST /v1/hosts/{name}/qualifications`` records what the host offers (its
free RT pCPUs, wired networks, the digest of its plan and wiring): one
running qualification per host. The admin's client then boots probe servers
on the host (``server create`` with ``host``) and queues measurements for it
(``qualification`` in the measurement's body). ``POST
/v1/qualifications/{id}/finish`` draws the verdict from those measurements
alone (rtkvm.api.qualify): passed, the host is qualified until its plan or
wiring changes; failed, with the reasons. ``abandon`` ends one that will not
be finished. Admins only. Must not boot or measure anything itself.
"""

from __future__ import annotations

import json
import logging
import uuid

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from rtkvm.api.deps import AdminDep, ServicesDep
from rtkvm.api.errors import ApiError, not_found
from rtkvm.api.liveness import host_status
from rtkvm.api.qualify import (
    RUNNING_FOR_AT_MOST_S,
    host_basis,
    judge,
    offer,
    qualification_out,
)
from rtkvm.api.views import host_named
from rtkvm.db.models import Host, Instance, Measurement, Network, Qualification
from rtkvm.wire.node import OPENSTACK_ENGINE
from rtkvm.wire.qualify import QualificationCreate, QualificationOut
from rtkvm.wire.uuids import is_uuid

router = APIRouter(tags=["qualifications"])
log = logging.getLogger("rtkvm.api.qualifications")
LIST_MAX = 100


@router.post("/v1/hosts/{name}/qualifications", status_code=201)
def begin(
    name: str, body: QualificationCreate, services: ServicesDep, admin: AdminDep
) -> QualificationOut:
    """Begin a qualification of the host: what it offers now is what must be measured."""
    now = services.clock()
    with services.db.write() as s:
        host = host_named(s, name)
        s.refresh(host, with_for_update=True)
        _check_qualifiable(host, now, services.settings.agent_timeout_s)
        running = s.scalar(
            select(Qualification).where(
                Qualification.host_id == host.id, Qualification.state == "running"
            )
        )
        if running is not None:
            if now - running.started_at <= RUNNING_FOR_AT_MOST_S:
                raise ApiError(
                    409,
                    f"host {name}: qualification {running.id} is running since "
                    f"{now - running.started_at:.0f} s: wait for it, or end it with "
                    f"`rtkvm cloud host qualify {name} --abandon {running.id}`",
                )
            _end(running, "abandoned", now, "left running: a new qualification began")
        offered = offer(s, host)
        if not offered.free:
            raise ApiError(
                409,
                f"host {name} has no free RT pCPU (guests hold {offered.held.format() or 'none'}"
                "): a qualification measures only the pCPUs no guest holds and never disturbs "
                "a running guest; free some, then qualify it",
            )
        q = Qualification(
            id=str(uuid.uuid4()),
            host_id=host.id,
            user_id=admin.user_id,
            state="running",
            basis=offered.basis,
            free_pcpus=offered.free.format(),
            held_pcpus=offered.held.format(),
            networks=json.dumps(list(offered.networks)),
            max_latency_us=body.max_latency_us,
            rt_waiver=host.rt_waiver,
            started_at=now,
        )
        s.add(q)
        s.flush()
        log.info(
            "qualification %s of host %s begun by %s: free RT pCPUs %s, networks %s",
            q.id,
            name,
            admin.user_name,
            q.free_pcpus,
            ", ".join(offered.networks) or "none",
        )
        return qualification_out(s, q, host)


@router.get("/v1/hosts/{name}/qualifications")
def list_for_host(
    name: str,
    services: ServicesDep,
    _: AdminDep,
    limit: int = Query(default=20, ge=1, le=LIST_MAX, description="at most this many"),
) -> list[QualificationOut]:
    """The host's qualifications, newest first."""
    with services.db.read() as s:
        host = host_named(s, name)
        rows = s.scalars(
            select(Qualification)
            .where(Qualification.host_id == host.id)
            .order_by(Qualification.started_at.desc(), Qualification.id.desc())
            .limit(limit)
        )
        return [qualification_out(s, q, host) for q in rows]


@router.get("/v1/qualifications/{qualification_id}")
def show(qualification_id: str, services: ServicesDep, _: AdminDep) -> QualificationOut:
    with services.db.read() as s:
        return qualification_out(s, _qualification(s, qualification_id))


@router.post("/v1/qualifications/{qualification_id}/finish")
def finish(qualification_id: str, services: ServicesDep, admin: AdminDep) -> QualificationOut:
    """Judge the qualification from its own measurements, all of which must have ended."""
    now = services.clock()
    with services.db.write() as s:
        q = _qualification(s, qualification_id, lock=True)
        _check_running(q)
        host = s.get(Host, q.host_id, with_for_update=True)
        assert host is not None  # removing a host removes its qualifications
        ms = list(s.scalars(select(Measurement).where(Measurement.qualification_id == q.id)))
        pending = [m.id for m in ms if m.state in ("queued", "running")]
        if pending:
            raise ApiError(
                409,
                f"qualification {q.id}: measurement(s) {', '.join(pending)} have not ended: "
                "finish it when they are done (`rtkvm cloud measure show ID`)",
            )
        ids = {m.instance_id for m in ms} | {m.peer_instance_id for m in ms if m.peer_instance_id}
        instances = {i.id: i for i in s.scalars(select(Instance).where(Instance.id.in_(ids)))}
        used = {m.network_id for m in ms if m.network_id is not None}
        names = dict(s.execute(select(Network.id, Network.name).where(Network.id.in_(used))).all())
        proof = judge(q, ms, instances, names)
        reasons = list(proof.reasons)
        if q.basis != host_basis(s, host):
            reasons.append(
                f"host {host.name} registered another plan or wiring while it ran: qualify it again"
            )
        proof = proof.model_copy(update={"reasons": reasons})
        q.result = proof.model_dump_json()
        if reasons:
            _end(q, "failed", now, "; ".join(reasons))
            over = q.max_latency_us is not None and any(
                p.worst_us is not None and p.worst_us > q.max_latency_us for p in proof.pcpus
            )
            if over and host.qualification_id is not None:
                # measured over the limit now: an older proof does not hold any more
                host.qualified_at = host.qualification_id = None
        else:
            _end(q, "passed", now, None)
            host.qualified_at = now
            host.qualification_id = q.id
        s.flush()
        log.info(
            "qualification %s of host %s %s (finished by %s): worst %s µs%s%s",
            q.id,
            host.name,
            q.state,
            admin.user_name,
            "-" if proof.worst_us is None else f"{proof.worst_us:g}",
            " (emulated: no real-time meaning)" if proof.emulated else "",
            f"; {q.fault}" if q.fault else "",
        )
        return qualification_out(s, q, host)


@router.post("/v1/qualifications/{qualification_id}/abandon")
def abandon(qualification_id: str, services: ServicesDep, admin: AdminDep) -> QualificationOut:
    """End a running qualification without a verdict (the host keeps what it had)."""
    with services.db.write() as s:
        q = _qualification(s, qualification_id, lock=True)
        _check_running(q)
        _end(q, "abandoned", services.clock(), f"abandoned by {admin.user_name}")
        s.flush()
        return qualification_out(s, q)


def _check_qualifiable(host: Host, now: float, timeout: float) -> None:
    if host.engine == OPENSTACK_ENGINE:
        raise ApiError(
            409,
            f"host {host.name} is an OpenStack compute node: Nova builds its guests, so "
            "rtkvm cannot boot probe servers there; measure its guests with `rtkvm openstack "
            "measure`",
        )
    status = host_status(host, now, timeout)
    if status != "up":
        raise ApiError(
            409,
            f"host {host.name} is {status}: a qualification needs its agent up (it boots and "
            "measures the probe servers); start `rtkvm agent` there",
        )


def _qualification(session: Session, ident: str, *, lock: bool = False) -> Qualification:
    q = session.get(Qualification, ident.lower(), with_for_update=lock) if is_uuid(ident) else None
    if q is None:
        hint = " (list a host's with `rtkvm cloud host qualifications HOST`)"
        raise not_found("qualification", ident, hint)
    return q


def _check_running(q: Qualification) -> None:
    if q.state != "running":
        raise ApiError(409, f"qualification {q.id} is {q.state} already: nothing to end")


def _end(q: Qualification, state: str, now: float, fault: str | None) -> None:
    q.state = state
    q.finished_at = now
    q.fault = fault
