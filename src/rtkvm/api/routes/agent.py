"""The node agent's side of the API, authenticated by the host's own agent token.

An agent registers its host (topology, partition plan, doctor verdict, data
plane state, wired physical networks), sends heartbeats, fetches the
instances placed on its host (``building`` to create, ``deleting`` to tear
down) and reports each result. After a restart it may ask what the cloud
knows of domains and switch ports it found but was not given (``POST
/unknown``: explained, logged, and stored as the host's current list for
admins; never deleted on the host). A token is bound to one host: an agent
can only ever read or write its own host. Must not schedule.
"""

from __future__ import annotations

import json
import logging
import shlex
import uuid

from fastapi import APIRouter
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from rtkvm.api.deps import AgentDep, ServicesDep
from rtkvm.api.errors import ApiError, check_move, not_found
from rtkvm.api.qualify import forget_if_changed
from rtkvm.api.views import agent_instance, agent_instances, host_out
from rtkvm.cpuset import CpuSet
from rtkvm.db.models import (
    CpuClaim,
    GuestVerdict,
    Host,
    HostDetail,
    HostNode,
    Instance,
    Network,
    UnknownResource,
)
from rtkvm.errors import InputError
from rtkvm.host.partition import PartitionPlan
from rtkvm.net.names import check_label
from rtkvm.scheduler.claim import refresh_capacity, release
from rtkvm.scheduler.hostdata import node_rows, rt_capacity
from rtkvm.wire import schemas
from rtkvm.wire.base import DB_INT_MAX
from rtkvm.wire.console import split_address
from rtkvm.wire.guest import AgentInstance, NetworkPort, StateReport
from rtkvm.wire.lifecycle import PLACED_STATES
from rtkvm.wire.node import (
    OPENSTACK_ENGINE,
    Heartbeat,
    HostReport,
    UnknownKind,
    UnknownReport,
    UnknownVerdict,
)
from rtkvm.wire.uuids import is_uuid

router = APIRouter(prefix="/v1/agent", tags=["agent"])
log = logging.getLogger("rtkvm.api.agent")

MOVES = {
    "building": {"active", "error"},
    "active": {"active", "stopped", "error"},
    "stopped": {"active", "stopped", "error"},
    "error": {"active", "stopped", "error"},
    "deleting": {"deleted", "error"},
}


def _check_fits(node: int, what: str, value: int) -> None:
    """Refuse a number no database column holds (SQLite overflows, PostgreSQL refuses)."""
    if value > DB_INT_MAX:
        raise ApiError(
            422,
            f"topology: node {node}'s {what} {value} is beyond {DB_INT_MAX}: "
            "report the host's real topology",
        )


@router.put("/host")
def register(body: HostReport, services: ServicesDep, agent: AgentDep) -> schemas.HostOut:
    """Register or re-register; refused when placed guests would lose their pCPUs."""
    try:
        plan = PartitionPlan.model_validate(body.plan)
    except Exception as exc:
        raise ApiError(422, f"plan: not a valid partition plan: {exc}") from None
    topology = body.topology.to_topology()
    rows = node_rows(topology, plan, services.settings.host_reserved_memory_mib)
    for row in rows:
        _check_fits(row.node, "node id", row.node)
        _check_fits(row.node, "2 MiB hugepage total", row.hp2m_total)
        _check_fits(row.node, "1 GiB hugepage total", row.hp1g_total)
        _check_fits(row.node, "RAM (MiB) for 4k pages", row.mem_mib)
    for label in body.physnets:
        check_label("physical network", label)
    if body.console_address is not None:
        try:
            split_address(body.console_address)
        except ValueError as exc:
            raise ApiError(422, f"console_address: {exc}") from None
    now = services.clock()
    with services.db.write() as s:
        host = s.get(Host, agent.host_id, with_for_update=True)
        if host is None:
            raise ApiError(401, "this agent's host was removed: enroll it again")
        _set_engine(s, host, body.engine)
        claims = list(
            s.execute(select(CpuClaim.pcpu, CpuClaim.node).where(CpuClaim.host_id == host.id))
        )
        claimed = CpuSet(p for p, _ in claims)
        lost = claimed - plan.rt_vcpu
        if lost:
            raise InputError(
                f"host {host.name}: guests hold pCPUs {lost} that the new plan does not give "
                "to rt_vcpu: delete those guests before re-planning the host"
            )
        existing = {
            n.node: n for n in s.scalars(select(HostNode).where(HostNode.host_id == host.id))
        }
        for row in rows:
            node = existing.pop(row.node, None)
            if node is None:
                node = HostNode(
                    host_id=host.id, node=row.node, rt_used=0, hp2m_used=0, hp1g_used=0, mem_used=0
                )
                s.add(node)
            if node.hp2m_used > row.hp2m_total or node.hp1g_used > row.hp1g_total:
                raise InputError(
                    f"host {host.name} node {row.node}: guests use more hugepages than the "
                    "new report has; reserve more hugepages or delete guests first"
                )
            if node.mem_used > row.mem_mib:
                raise InputError(
                    f"host {host.name} node {row.node}: guests with 4k pages use "
                    f"{node.mem_used} MiB of RAM, more than the {row.mem_mib} MiB the new report "
                    "leaves beside the hugepage pools; shrink the pools or delete guests first"
                )
            node.rt_pcpus = str(row.rt_pcpus)
            node.rt_total = rt_capacity(row.rt_pcpus, host.pcpu_share)
            node.rt_used = sum(1 for p, n in claims if n == row.node)
            node.hp2m_total = row.hp2m_total
            node.hp1g_total = row.hp1g_total
            node.mem_total = row.mem_mib
        for gone in existing.values():
            if gone.rt_used or gone.hp2m_used or gone.hp1g_used or gone.mem_used:
                raise InputError(f"host {host.name}: node {gone.node} vanished but guests use it")
            s.delete(gone)
        detail = s.get(HostDetail, host.id)
        if detail is None:
            detail = HostDetail(host_id=host.id)
            s.add(detail)
        detail.topology = body.topology.model_dump_json()
        detail.plan = plan.model_dump_json()
        host.doctor_verdict = body.doctor.verdict
        host.doctor_failed = json.dumps(body.doctor.failed)
        host.dataplane_state = body.dataplane_state
        host.dataplane = body.dataplane.model_dump_json() if body.dataplane else None
        host.physnets = json.dumps(sorted(set(body.physnets)))
        host.tuning_drift = None if body.tuning_drift is None else json.dumps(body.tuning_drift)
        host.console_address = body.console_address
        host.disk_gb_total = body.disk_gb
        host.registered_at = now
        host.heartbeat_at = now
        s.flush()
        if forget_if_changed(s, host):
            log.warning(
                "host %s registered another plan or wiring: its qualification no longer "
                "holds; qualify it again (rtkvm cloud host qualify %s)",
                host.name,
                host.name,
            )
        refresh_capacity(s, host.id)
        s.refresh(host)
        return host_out(s, host, now, services.settings.agent_timeout_s)


def _set_engine(session: Session, host: Host, engine: str) -> None:
    """Who builds the host's guests from now on; refused while the other engine's are there."""
    if engine == host.engine:
        return
    placed = session.scalar(
        select(func.count())
        .select_from(Instance)
        .where(Instance.host_id == host.id, Instance.state.in_(PLACED_STATES))
    )
    if placed:
        raise ApiError(
            409,
            f"host {host.name}: {placed} rtkvm instance(s) are placed here: delete them "
            f"(`rtkvm cloud server delete`) before this host's guests are built by {engine}",
        )
    if engine != OPENSTACK_ENGINE:  # the other engine's guests are no longer reported here
        session.execute(delete(GuestVerdict).where(GuestVerdict.host_id == host.id))
    log.warning("host %s: its guests are built by %s from now on", host.name, engine)
    host.engine = engine


@router.post("/heartbeat")
def heartbeat(body: Heartbeat, services: ServicesDep, agent: AgentDep) -> schemas.HostOut:
    now = services.clock()
    with services.db.write() as s:
        host = s.get(Host, agent.host_id)
        if host is None:
            raise ApiError(401, "this agent's host was removed: enroll it again")
        if host.registered_at is None:
            raise ApiError(409, "register the host (PUT /v1/agent/host) before heartbeats")
        host.heartbeat_at = now
        if body.dataplane_state is not None:
            host.dataplane_state = body.dataplane_state
        if body.doctor is not None:
            host.doctor_verdict = body.doctor.verdict
            host.doctor_failed = json.dumps(body.doctor.failed)
        if body.stats is not None:
            host.agent_stats = body.stats.model_dump_json()
        s.flush()
        return host_out(s, host, now, services.settings.agent_timeout_s)


@router.get("/networks")
def networks(services: ServicesDep, agent: AgentDep) -> list[NetworkPort]:
    """The cloud's networks on the physical networks this host offers: its switch carries
    them (pushed at each agent inspection) and drops those deleted here."""
    with services.db.read() as s:
        host = s.get(Host, agent.host_id)
        if host is None:
            raise ApiError(401, "this agent's host was removed: enroll it again")
        wired = set(json.loads(host.physnets))
        rows = s.scalars(select(Network).order_by(Network.name))
        return [
            NetworkPort(name=n.name, physnet=n.physnet, vlan=n.vlan)
            for n in rows
            if n.physnet in wired
        ]


@router.get("/instances")
def work(services: ServicesDep, agent: AgentDep) -> list[AgentInstance]:
    """Instances placed on this host that are not deleted, oldest first."""
    with services.db.read() as s:
        rows = s.scalars(
            select(Instance)
            .where(Instance.host_id == agent.host_id, Instance.state.in_(PLACED_STATES))
            .order_by(Instance.created_at, Instance.id)
        )
        return agent_instances(s, list(rows))


@router.post("/instances/{instance_id}/state")
def report(
    instance_id: str, body: StateReport, services: ServicesDep, agent: AgentDep
) -> AgentInstance:
    """Move an instance of this host; 'deleted' (after 'deleting') frees its resources.

    A report with ``done`` equal to the instance's power task clears the task. A stopped
    instance keeps the agent's note of why (the guest powered itself off, say) as its
    fault."""
    now = services.clock()
    with services.db.write() as s:
        inst = _locked(s, instance_id)  # one state change of an instance at a time
        if inst is None or inst.host_id != agent.host_id:
            raise not_found("instance", instance_id, " on this host")
        if body.rt is not None and body.state != "active":
            raise ApiError(422, "rt: an RT check is reported with state 'active' only")
        _keep_rt_check(inst, body, now)
        finished = body.done is not None and body.done == inst.task
        if finished:  # a task that is no longer the instance's (a stale report) stays
            inst.task = None
            inst.updated_at = now
        if inst.state == body.state:
            if finished and body.state in ("error", "stopped"):
                inst.fault = body.fault
            return agent_instance(s, inst)
        check_move(f"instance {instance_id}", inst.state, body.state, MOVES)
        if body.state == "deleted":
            release(s, inst, now)
        elif inst.state == "deleting":  # teardown failed: stay deleting, keep the fault
            inst.fault = body.fault or "teardown failed on the host"
            inst.updated_at = now
            return agent_instance(s, inst)
        if inst.state == "building" and body.state == "active":
            services.metrics.create_to_active_seconds.observe(max(now - inst.created_at, 0.0))
        inst.state = body.state
        inst.fault = body.fault if body.state in ("error", "stopped") else None
        inst.updated_at = now
        s.flush()
        return agent_instance(s, inst)


def _keep_rt_check(inst: Instance, body: StateReport, now: float) -> None:
    """The agent's RT check of a running guest; a guest that stops running is unverified."""
    if body.rt is not None:
        inst.rt_state = body.rt.state
        inst.rt_detail = json.dumps({"reasons": body.rt.reasons, "waived": body.rt.waived})
        inst.rt_checked_at = now
    elif body.state != "active":
        inst.rt_state, inst.rt_detail, inst.rt_checked_at = "unverified", None, None


@router.post("/unknown")
def unknown(body: UnknownReport, services: ServicesDep, agent: AgentDep) -> list[UnknownVerdict]:
    """Explain domains and switch ports an agent found but was not given: logged, never deleted.

    The answer says what the cloud knows of each one's instance (deleted but
    left behind, placed on another host, not placed yet, or nothing at all)
    without naming other hosts or projects. The report is the agent's full
    list: it replaces the host's stored one (``GET /v1/hosts/{name}/unknown``),
    keeping when each was first seen; an empty report clears it.
    """
    verdicts = []
    now = services.clock()
    with services.db.write() as s:
        if s.get(Host, agent.host_id, with_for_update=True) is None:  # one report at a time
            raise ApiError(401, "this agent's host was removed: enroll it again")
        for dom in body.domains:
            # the name comes from the host: quoted, so a copied hint runs no other command
            remove = f"remove it with `rtkvm guest delete {shlex.quote(dom.name)}` on the host"
            verdict, hint = _explain(_instance(s, dom.uuid), agent.host_id, remove)
            verdicts.append(
                UnknownVerdict(
                    name=dom.name, uuid=dom.uuid, running=dom.running, verdict=verdict, hint=hint
                )
            )
        for port in body.ports:
            name = f"vhu-{port.guest}-{port.nic}"
            ident = _uuid_of_hex(port.guest)
            remove = f"remove it with `ovs-vsctl del-port {shlex.quote(name)}` on the host"
            verdict, hint = _explain(_instance(s, ident), agent.host_id, remove)
            verdicts.append(
                UnknownVerdict(
                    name=name, uuid=ident, running=None, verdict=verdict, hint=hint, kind="port"
                )
            )
        _store(s, agent.host_id, verdicts, now)
    for v in verdicts:
        log.warning(  # %r: a name with a newline cannot forge a log line
            "host %s has an unknown %s %r (%r): %s: %s",
            agent.host_name,
            v.kind,
            v.name,
            v.uuid,
            v.verdict,
            v.hint,
        )
    return verdicts


def _store(
    session: Session, host_id: int | None, verdicts: list[UnknownVerdict], now: float
) -> None:
    """Make the host's stored unknown resources exactly ``verdicts`` (by kind and name)."""
    rows = {
        (r.kind, r.name): r
        for r in session.scalars(select(UnknownResource).where(UnknownResource.host_id == host_id))
    }
    seen: set[tuple[str, str]] = set()
    for v in verdicts:
        key = (v.kind, v.name)
        if key in seen:  # reported twice: the first one counts
            continue
        seen.add(key)
        row = rows.get(key)
        if row is None:
            assert host_id is not None
            row = UnknownResource(host_id=host_id, kind=v.kind, name=v.name, first_seen=now)
            session.add(row)
        row.uuid = v.uuid
        row.running = v.running
        row.verdict = v.verdict
        row.hint = v.hint
        row.last_seen = now
    gone = [r.id for key, r in rows.items() if key not in seen]
    if gone:
        session.execute(delete(UnknownResource).where(UnknownResource.id.in_(gone)))


def _locked(session: Session, ident: str) -> Instance | None:
    """The instance row, locked until the transaction ends (None: no such instance)."""
    if not is_uuid(ident):
        return None
    return session.get(Instance, ident.lower(), with_for_update=True)


def _instance(session: Session, ident: str) -> Instance | None:
    return session.get(Instance, ident.lower()) if is_uuid(ident) else None


def _uuid_of_hex(guest: str) -> str:
    """The instance id of a port's guest id (32 hex digits), else the guest id itself."""
    try:
        return str(uuid.UUID(hex=guest)) if len(guest) == 32 else guest
    except ValueError:
        return guest


def _explain(inst: Instance | None, host_id: int | None, remove: str) -> tuple[UnknownKind, str]:
    if inst is None:
        return "unknown", (
            f"no instance has this id (made by hand or by another cloud): {remove} if it is "
            "not wanted"
        )
    if inst.state == "deleted":
        return "deleted", f"its instance was deleted but this was left behind: {remove}"
    if inst.host_id != host_id:
        return "other-host", (
            "its instance is placed on another host; this copy is not the one the cloud "
            f"counts: {remove}"
        )
    return "not-placed", f"its instance is {inst.state} and not placed yet: {remove}"
