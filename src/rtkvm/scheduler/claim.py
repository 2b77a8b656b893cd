"""Schedule one instance and claim its resources atomically in the database.

:func:`schedule` loads host snapshots, filters and ranks them, then tries
candidates one by one. Each try is one write transaction that re-reads the
host's claims, pins the guest with :func:`rtkvm.domain.placement.place`
(the same pure pinning the agent uses), inserts one ``cpu_claims`` row per
pCPU (the UNIQUE (host, pcpu, slot) triple is the lock: a violation means another
request won the race), bumps the node's counters with conditional updates
(hugepages and RAM cannot go negative), checks and bumps the project's quota with a
conditional update, and moves the instance from ``scheduling`` to
``building``. Slot 0 of a pCPU is its one guest; a waived lab host whose
admin set ``pcpu_share`` N lets up to N guests share a pCPU (slots 0..N-1),
used only when no unshared pCPU fits. On a host admitted only by an admin's RT waiver (not
RT-ready), the instance gets a copy of the waiver: its latency is not
assured, and it says so for as long as it lives. Any failure rolls the
whole transaction back; a lost race tries the next candidate, a bounded
number of times.

:func:`release` gives everything back (claims, counters, quota) and closes
the usage record, inside the caller's transaction. Nothing here keeps state
in process memory.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from rtkvm.cpuset import CpuSet
from rtkvm.db.engine import Database
from rtkvm.db.models import CpuClaim, Host, HostNode, Instance, Project, UsageRecord
from rtkvm.domain.placement import Placement, place
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.errors import (
    InstanceGoneError,
    NoValidHostError,
    PlanError,
    QuotaExceededError,
)
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import HugepagePool, NumaNode, Topology
from rtkvm.scheduler import claim_sql, queries
from rtkvm.scheduler.filters import WEIGHERS, Context, candidates, explain, explain_counts, rank
from rtkvm.scheduler.loader import load_hosts
from rtkvm.scheduler.snapshot import (
    READY,
    HostSnapshot,
    Request,
    claimed_pcpus,
    small_page_mib_per_cell,
)
from rtkvm.wire.placement import PlacementDoc
from rtkvm.wire.topology import HP_1G_KIB, HP_2M_KIB, TopologyDoc

PREFILTER = 32
"""How many hosts SQL hands to the pure filters and weighers per decision."""

TIE_SPREAD = 3
"""At most how many equally good candidates concurrent requests are spread over."""

ROUNDS = 3
"""Snapshots taken at most per create (a fresh one after a run of lost races)."""


class _LostError(Exception):
    """This candidate was taken (or filled) by a concurrent request: try the next one."""


class _SharedTooFewError(_LostError):
    """A lab host sharing pCPUs has fewer distinct pCPUs with a free slot than the guest
    needs (its capacity counters count slots, so the filters let it through); says why."""


@dataclass(frozen=True)
class Claimed:
    host_id: int
    host_name: str
    placement: Placement
    attempts: int
    placement_json: str = "{}"
    """The PlacementDoc stored with the instance."""
    rt_waiver: str | None = None
    """What the instance keeps of its host's RT waiver (None: an RT-ready host)."""


def schedule(
    db: Database,
    *,
    instance_id: str,
    project_id: int,
    spec: RtGuestSpec,
    request: Request,
    weigher: str,
    agent_timeout_s: float,
    max_attempts: int,
    now: float,
) -> Claimed:
    """Place and claim; raises NoValidHostError, QuotaExceededError or InstanceGoneError."""
    ctx = Context(now=now, agent_timeout_s=agent_timeout_s)
    attempts = 0
    shared_too_few: dict[str, str] = {}
    for _ in range(ROUNDS):
        ranked = decide(db, request, ctx, weigher)
        for host in _spread_ties(ranked, request, weigher, instance_id):
            while attempts < max_attempts:
                attempts += 1
                try:
                    with db.write() as session:
                        placement, doc, waived = _claim_on(
                            db, session, host.id, instance_id, project_id, spec, now,
                            disk_gb=request.disk_gb,
                        )  # fmt: skip
                    return Claimed(host.id, host.name, placement, attempts, doc, waived)
                except _SharedTooFewError as exc:
                    shared_too_few[host.name] = str(exc)
                    break
                except _LostError:
                    break  # the host is full now: next candidate
                except IntegrityError:
                    continue  # the winner has committed: the same host, re-read, may still fit
                except OperationalError as exc:  # deadlock or lock timeout
                    if "deadlock" not in str(exc).lower() and "locked" not in str(exc).lower():
                        raise
                    continue
    if shared_too_few:
        why = "; ".join(f"{name}: {text}" for name, text in sorted(shared_too_few.items()))
        raise NoValidHostError(
            f"no host can take flavor {request.flavor!r}: the lab hosts that share RT pCPUs "
            f"have too few distinct pCPUs with a free slot for it ({why}). Use a flavor with "
            "fewer RT vCPUs, or free pCPUs"
        )
    raise NoValidHostError(
        f"no host could be claimed for flavor {request.flavor!r} after {attempts} attempts: "
        "concurrent requests took the candidate hosts first; retry the request"
    )


def decide(db: Database, request: Request, ctx: Context, weigher: str) -> list[HostSnapshot]:
    """Candidates best first; raises NoValidHostError with the per-class explanation.

    One SQL statement narrows the hosts to the best few that may fit; the pure
    filters and weighers decide over them. When none of those fits, SQL counts
    every host's first failing filter (:func:`queries.refusal_counts`) for the
    explanation; hosts it finds fitting after all (freed meanwhile, or past
    the first few) are loaded and decided on, and all hosts are loaded only as
    a last safety net.
    """
    spread = weigher == "spread"
    few = queries.candidates(db, request, ctx, spread=spread, limit=PREFILTER)
    ranked = rank(candidates(few, request, ctx), request, weigher)
    if ranked:
        return ranked
    if queries.exact_in_sql(request):
        counts = queries.refusal_counts(db, request, ctx)
        if not counts.get("", 0):
            counts.pop("", None)
            raise NoValidHostError(explain_counts(counts, sum(counts.values()), request, ctx))
    maybe = queries.candidates(db, request, ctx, spread=spread, limit=None)
    ranked = rank(candidates(maybe, request, ctx), request, weigher)
    if ranked:
        return ranked
    with db.read() as session:
        every = load_hosts(session)
    ranked = rank(candidates(every, request, ctx), request, weigher)
    if not ranked:
        raise NoValidHostError(explain(every, request, ctx))
    return ranked


def _spread_ties(
    ranked: list[HostSnapshot], request: Request, weigher: str, instance_id: str
) -> list[HostSnapshot]:
    """Rotate the leading candidates that tie on weight by the instance id, so that
    concurrent requests start on different equally good hosts instead of all racing
    for the first one. Never reorders hosts of different weight (pack stays pack)."""
    weigh = WEIGHERS[weigher]
    if not ranked:
        return ranked
    best = (ranked[0].waived, weigh(ranked[0], request))
    ties = 0
    while (
        ties < min(TIE_SPREAD, len(ranked))
        and (ranked[ties].waived, weigh(ranked[ties], request)) == best
    ):
        ties += 1
    if ties < 2:
        return ranked
    shift = int(hashlib.sha256(instance_id.encode()).hexdigest()[:8], 16) % ties
    head = ranked[:ties]
    return head[shift:] + head[:shift] + ranked[ties:]


@functools.lru_cache(maxsize=256)
def parse_host(topology: str, plan: str) -> tuple[Topology, PartitionPlan]:
    """Parse a host's stored JSON (a pure function of the text, so memoized)."""
    return (
        TopologyDoc.model_validate_json(topology).to_topology(),
        PartitionPlan.model_validate_json(plan),
    )


def host_topology(
    topology_json: str, plan_json: str, nodes: list[tuple[int, int, int, int, int]]
) -> tuple[Topology, PartitionPlan]:
    """The host's topology with hugepage pools set to what the database says is free
    (``nodes``: node, 2M total, 2M used, 1G total, 1G used)."""
    topo, plan = parse_host(topology_json, plan_json)
    by_node = {n[0]: n for n in nodes}
    fixed = []
    for node in topo.nodes:
        row = by_node.get(node.id)
        pools: tuple[HugepagePool, ...] = ()
        if row is not None:
            _, t2, u2, t1, u1 = row
            pools = (HugepagePool(HP_2M_KIB, t2, t2 - u2), HugepagePool(HP_1G_KIB, t1, t1 - u1))
        fixed.append(NumaNode(node.id, node.cpus, 0, 0, pools))
    return Topology(topo.online, topo.cores, tuple(fixed), ()), plan


def _claim_on(
    db: Database,
    session: Session,
    host_id: int,
    instance_id: str,
    project_id: int,
    spec: RtGuestSpec,
    now: float,
    *,
    disk_gb: int = 0,
) -> tuple[Placement, str, str | None]:
    """One claim transaction (the statements of ``claim_sql``); the host's row is locked
    first (PostgreSQL; SQLite: BEGIN IMMEDIATE), so claims on one host queue there.
    Returns the placement, its stored JSON and the instance's copy of a host waiver."""
    host = {"host": host_id}
    row = claim_sql.run(db, session, "host_for_claim", host).first()
    if row is None:
        raise _LostError()
    verdict, waiver, share, topology_json, plan_json = tuple(row)
    needs_rt = claimed_pcpus(spec) > 0  # a shared guest needs no RT-admitted host
    if needs_rt and verdict != READY and waiver is None:  # its waiver was cleared meanwhile
        raise _LostError()
    share = share if waiver is not None else 1
    nodes: list[tuple[int, int, int, int, int]] = [
        tuple(n) for n in claim_sql.run(db, session, "node_counters", host)
    ]
    slots: dict[int, set[int]] = {}
    for pcpu, slot in (tuple(r) for r in claim_sql.run(db, session, "claimed_slots", host)):
        slots.setdefault(pcpu, set()).add(slot)
    topology, plan = host_topology(topology_json, plan_json, nodes)
    placement = _place(spec, plan, topology, slots, share)
    pcpus_per_node = Counter(topology.node_of_cpu(c) for c in placement.claimed)
    pages = _pages_per_node(spec, placement)
    mib = _mib_per_node(spec, placement)
    claims = [
        {
            "host": host_id,
            "pcpu": c,
            "slot": min(set(range(share)) - slots.get(c, set())),
            "node": topology.node_of_cpu(c),
            "instance": instance_id,
        }
        for c in sorted(placement.claimed)
    ]
    if claims:  # one executemany: a race surfaces here as a UNIQUE violation
        claim_sql.run(db, session, "insert_claim", claims)
    for node in sorted(set(pcpus_per_node) | set(pages) | set(mib)):
        taken = {
            "host": host_id,
            "node": node,
            "n": pcpus_per_node.get(node, 0),
            "p2": pages.get(node, 0) if spec.page_size_kib == HP_2M_KIB else 0,
            "p1": pages.get(node, 0) if spec.page_size_kib == HP_1G_KIB else 0,
            "m": mib.get(node, 0),
        }
        if claim_sql.run(db, session, "take_node", taken).rowcount != 1:
            raise _LostError()
    if (
        disk_gb
        and claim_sql.run(db, session, "take_disk", {"host": host_id, "disk": disk_gb}).rowcount
        != 1
    ):
        raise _LostError()  # the disk space went to another server meanwhile
    claim_sql.run(db, session, "capacity_update", host)
    cores, vcpus = len(placement.claimed), len(placement.floating_vcpus)
    _take_quota(db, session, project_id, cores, vcpus)
    doc = PlacementDoc.of(placement, pages, spec.page_size_kib, mib).model_dump_json()
    waived = _instance_waiver(waiver, share) if needs_rt and verdict != READY else None
    moved = claim_sql.run(
        db,
        session,
        "move_to_building",
        {
            "instance": instance_id,
            "host": host_id,
            "cores": cores,
            "vcpus": vcpus,
            "placement": doc,
            "waiver": waived,
            "now": now,
        },
    )
    if moved.rowcount != 1:
        raise InstanceGoneError(f"instance {instance_id} was deleted while it was being scheduled")
    usage = {
        "project": project_id,
        "instance": instance_id,
        "cores": cores,
        "vcpus": vcpus,
        "now": now,
    }
    claim_sql.run(db, session, "open_usage", usage)
    return placement, doc, waived


def _place(
    spec: RtGuestSpec,
    plan: PartitionPlan,
    topology: Topology,
    slots: dict[int, set[int]],
    share: int,
) -> Placement:
    """Pin on pCPUs nobody uses; on a lab host that shares pCPUs, then on those with a
    free slot. Raises _LostError when neither fits (the host filled up meanwhile)."""
    hugepages = spec.page_size != "4k"
    used = CpuSet(slots)
    try:
        return place(spec, plan, topology, used, check_hugepages=hugepages)
    except PlanError:
        if share <= 1:
            raise _LostError() from None
    full = CpuSet(p for p, taken in slots.items() if len(taken) >= share)
    try:
        return place(spec, plan, topology, full, check_hugepages=hugepages)
    except PlanError as exc:
        raise _SharedTooFewError(str(exc)) from None


def _instance_waiver(waiver: str | None, share: int) -> str | None:
    """What the instance keeps of its host's waiver (and of pCPU sharing)."""
    if waiver is None or share <= 1:
        return waiver
    return f"{waiver} (pCPUs shared by up to {share} guests)"


def _take_quota(db: Database, session: Session, project_id: int, cores: int, vcpus: int) -> None:
    values = {"project": project_id, "cores": cores, "vcpus": vcpus}
    ok = claim_sql.run(db, session, "take_quota", values)
    if ok.rowcount == 1:
        return
    project = session.get(Project, project_id)
    if project is None:
        raise QuotaExceededError(f"project {project_id} no longer exists")
    raise QuotaExceededError(
        f"quota of project {project.name!r} exceeded: it holds {project.rt_cores_used} of "
        f"{_limit(project.quota_rt_cores)} RT cores, {project.shared_vcpus_used} of "
        f"{_limit(project.quota_shared_vcpus)} shared vCPUs and {project.instances_used} of "
        f"{_limit(project.quota_instances)} instances; this guest needs {cores} RT cores and "
        f"{vcpus} shared vCPUs. Delete an instance or ask an admin to raise the quota "
        "(`rtkvm cloud project quota`)"
    )


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def _pages_per_node(spec: RtGuestSpec, placement: Placement) -> dict[int, int]:
    if spec.page_size == "4k":
        return {}
    per_cell = spec.cells()[0].memory_kib // spec.page_size_kib
    return dict(Counter({node: per_cell for node in placement.cell_nodes}))


def _mib_per_node(spec: RtGuestSpec, placement: Placement) -> dict[int, int]:
    per_cell = small_page_mib_per_cell(spec)
    if not per_cell:
        return {}
    return dict(Counter({node: per_cell for node in placement.cell_nodes}))


def release(session: Session, instance: Instance, now: float) -> None:
    """Give back the instance's pCPUs, hugepages, RAM, disk space and quota; close its usage
    record.

    Idempotent: an instance that holds nothing (:func:`holds`) is left as is.
    """
    if instance.host_id is None or not holds(instance):
        return
    lock_host(session, instance.host_id)
    per_node: dict[int, int] = {
        int(node): int(count)
        for node, count in session.execute(
            select(CpuClaim.node, func.count())
            .where(CpuClaim.instance_id == instance.id)
            .group_by(CpuClaim.node)
        )
    }
    doc = PlacementDoc.parse(instance.placement)
    pages, page_kib, mib = doc.hugepages, doc.page_kib, doc.memory_mib
    session.execute(delete(CpuClaim).where(CpuClaim.instance_id == instance.id))
    for node in sorted(set(per_node) | set(pages) | set(mib)):
        n = per_node.get(node, 0)
        p2 = pages.get(node, 0) if page_kib == HP_2M_KIB else 0
        p1 = pages.get(node, 0) if page_kib == HP_1G_KIB else 0
        session.execute(
            update(HostNode)
            .where(HostNode.host_id == instance.host_id, HostNode.node == node)
            .values(
                rt_used=HostNode.rt_used - n,
                hp2m_used=HostNode.hp2m_used - p2,
                hp1g_used=HostNode.hp1g_used - p1,
                mem_used=HostNode.mem_used - mib.get(node, 0),
            )
        )
    refresh_capacity(session, instance.host_id)
    if instance.disk_gb:
        session.execute(
            update(Host)
            .where(Host.id == instance.host_id)
            .values(disk_gb_used=Host.disk_gb_used - instance.disk_gb)
        )
    session.execute(
        update(Project)
        .where(Project.id == instance.project_id)
        .values(
            rt_cores_used=Project.rt_cores_used - instance.rt_cores,
            instances_used=Project.instances_used - 1,
            shared_vcpus_used=Project.shared_vcpus_used - instance.shared_vcpus,
        )
    )
    session.execute(
        update(UsageRecord)
        .where(UsageRecord.instance_id == instance.id, UsageRecord.ended_at.is_(None))
        .values(ended_at=now)
    )
    instance.rt_cores = 0
    instance.shared_vcpus = 0


def holds(instance: Instance) -> bool:
    """Whether the instance holds resources on a host: RT pCPUs, or vCPUs on its shared
    CPUs (a shared guest claims no pCPU but its memory and quota)."""
    return instance.host_id is not None and (instance.rt_cores > 0 or instance.shared_vcpus > 0)


HOLDING = or_(Instance.rt_cores > 0, Instance.shared_vcpus > 0)
"""SQL of :func:`holds` (with a host)."""


def lock_host(session: Session, host_id: int) -> None:
    """Take the host's row lock first, so that every writer locks host, then nodes."""
    session.execute(select(Host.id).where(Host.id == host_id).with_for_update())


def refresh_capacity(session: Session, host_id: int | None) -> None:
    """Recompute the host's (None: every host's) capacity summary from its node rows."""
    if host_id is None:
        session.execute(claim_sql.capacity_update_all())
        return
    session.execute(claim_sql.capacity_update(), {"host": host_id})


STALE_SCHEDULING_FAULT = (
    "the API process scheduling it stopped before it was placed (nothing was claimed): "
    "delete it and create it again"
)


def fail_stale_scheduling(session: Session, now: float, stale_s: float) -> int:
    """Fail instances left 'scheduling' by an API process that died (a claim commits the
    move out of 'scheduling' with its claims, so such an instance holds nothing). Returns
    how many were failed."""
    done = session.execute(
        update(Instance)
        .where(Instance.state == "scheduling", Instance.updated_at < now - stale_s)
        .values(state="error", fault=STALE_SCHEDULING_FAULT, updated_at=now)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def forget_failed_creates(session: Session, now: float, keep_s: float) -> int:
    """Hide creates that failed before they were placed (they hold nothing) once they are
    ``keep_s`` old: refused creates must not pile up in every list. Returns how many."""
    done = session.execute(
        update(Instance)
        .where(
            Instance.state == "error",
            Instance.host_id.is_(None),
            Instance.rt_cores == 0,
            Instance.shared_vcpus == 0,
            Instance.updated_at < now - keep_s,
        )
        .values(state="deleted", updated_at=now)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]
