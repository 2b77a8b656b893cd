"""The scheduler's two SQL statements: a decision's candidates, and a refusal's classes.

Both are built once per request *shape* (how many networks, which page size,
whether the data plane is needed, pack or spread, how many guest cells) and
database, then run with bound values through :meth:`Database.fetch`: one
round trip, no ORM.

- :func:`candidates` returns the best few hosts that may fit (a superset of
  what the pure filters accept, ordered as the weigher ranks them), with
  their NUMA nodes, in one statement: the RT-ready and the waived hosts are
  two index-ordered subqueries (``ix_hosts_ready_free``: verdict, free RT
  pCPUs, name), so a host that cannot hold the guest's pCPUs is never read.
- :func:`refusal_counts` classifies *every* host by the first filter it
  fails, in SQL, exactly as :func:`rtkvm.scheduler.filters.first_failure`
  does, and counts per class: an explanation at 10,000 hosts without
  loading them. Exact for guests whose cells are equal but for a larger
  cell 0 (every guest but some mixed ones); for the others
  :func:`exact_in_sql` says no and the caller loads hosts.

This module decides nothing: the pure filters and weighers do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    func,
    not_,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql import Executable

from rtkvm.db.engine import Database
from rtkvm.db.models import Host, HostNode
from rtkvm.scheduler.filters import FILTERS, Context
from rtkvm.scheduler.loader import HOST_COLUMNS, NODE_COLUMNS, snapshots
from rtkvm.scheduler.snapshot import READY, HostSnapshot, Request
from rtkvm.wire.node import RTKVM_ENGINE
from rtkvm.wire.topology import HP_1G_KIB, HP_2M_KIB

PAGE_COLUMNS = {
    HP_2M_KIB: (Host.hp2m_free_max, HostNode.hp2m_total, HostNode.hp2m_used),
    HP_1G_KIB: (Host.hp1g_free_max, HostNode.hp1g_total, HostNode.hp1g_used),
}
"""Per hugepage size: the host's summary column and the node's counters."""


@dataclass(frozen=True)
class Shape:
    """What a statement's text depends on (its values are bound parameters)."""

    networks: int
    need_dataplane: bool
    page_kib: int | None
    """Hugepage size the guest takes pages of; None: a 4k-page guest."""
    small_pages: bool
    spread: bool
    limit: int | None
    needs_rt: bool = True
    """False for a guest that claims no RT pCPU: any host's verdict will do."""
    target: bool = False
    """An admin chose the host."""
    qualified: bool = False
    """Only hosts qualified recently enough take it."""
    disk: bool = False
    """It has a disk: only hosts with room for it take it."""

    @classmethod
    def of(cls, req: Request, *, spread: bool, limit: int | None) -> Shape:
        return cls(
            networks=len(req.physnets),
            need_dataplane=bool(req.networks),
            page_kib=req.page_kib if req.pages_per_cell and req.page_kib in PAGE_COLUMNS else None,
            small_pages=bool(req.mib_per_cell),
            spread=spread,
            limit=limit,
            needs_rt=req.needs_rt,
            target=req.target_host is not None,
            qualified=req.needs_qualified,
            disk=req.disk_gb > 0,
        )


def _values(req: Request, ctx: Context) -> dict[str, Any]:
    """The bound values both statements take (extra ones are ignored by a statement)."""
    values: dict[str, Any] = {
        "after": ctx.now - ctx.agent_timeout_s,
        "node_need": max(req.cell_pcpus),
        "total_need": req.pcpus,
        "pages": req.pages_per_cell,
        "mib": req.mib_per_cell,
        "target": req.target_host,
        "qualified_since": req.qualified_since,
        "disk": req.disk_gb,
    }
    for i, label in enumerate(sorted(req.physnets)):  # labels are [a-z0-9]: safe in LIKE
        values[f"net{i}"] = f'%"{label}"%'
    return values


# -- a decision's candidates ----------------------------------------------------------


def _coarse(shape: Shape) -> list[Any]:
    """Host-row conditions every host that fits meets (summary columns only)."""
    where: list[Any] = [
        Host.engine == RTKVM_ENGINE,
        Host.heartbeat_at >= bindparam("after"),
        Host.node_free_max >= bindparam("node_need"),
        Host.rt_free >= bindparam("total_need"),
    ]
    if shape.page_kib is not None:
        where.append(PAGE_COLUMNS[shape.page_kib][0] >= bindparam("pages"))
    if shape.small_pages:
        where.append(Host.mem_free_max >= bindparam("mib"))
    if shape.need_dataplane:
        where.append(Host.dataplane_state == READY)
    if shape.target:
        where.append(Host.name == bindparam("target"))
    if shape.qualified:
        where.append(Host.qualified_at >= bindparam("qualified_since"))
    if shape.disk:  # NULL (never reported) compares as not true
        where.append(Host.disk_gb_total - Host.disk_gb_used >= bindparam("disk"))
    where += [Host.physnets.like(bindparam(f"net{i}")) for i in range(shape.networks)]
    return where


def _candidates_statement(shape: Shape) -> Executable:
    """The best few ready and waived hosts (their host columns read in the index-ordered
    subqueries themselves, not joined again), each with its nodes."""
    order = Host.rt_free.desc() if shape.spread else Host.rt_free.asc()
    parts = []
    admissions: tuple[Any, ...] = (true(),)  # a shared guest: any verdict
    if shape.needs_rt:
        waived = and_(Host.doctor_verdict != READY, Host.rt_waiver.is_not(None))
        admissions = (Host.doctor_verdict == READY, waived)
    for admitted in admissions:
        part = select(*HOST_COLUMNS).where(admitted, *_coarse(shape)).order_by(order, Host.name)
        if shape.limit is not None:
            part = part.limit(shape.limit)
        parts.append(select(*part.subquery().c))
    top = union_all(*parts).subquery("top")
    return select(*top.c, *NODE_COLUMNS).join_from(top, HostNode, HostNode.host_id == top.c.id)


def candidates(
    db: Database, req: Request, ctx: Context, *, spread: bool, limit: int | None
) -> list[HostSnapshot]:
    """At most ``limit`` RT-ready hosts (and as many waived ones) that may fit, with their
    nodes, best first for the weigher; None: every host that may fit."""
    shape = Shape.of(req, spread=spread, limit=limit)
    statement = db.prepared(("candidates", shape), lambda: _candidates_statement(shape))
    return snapshots(db.fetch(statement, _values(req, ctx)))


# -- a refusal's classes ----------------------------------------------------------------


def exact_in_sql(req: Request) -> bool:
    """Whether the node conditions below decide like ``fit_nodes``: every cell after the
    first needs the same pCPUs, and the first at least as many (its greedy best fit
    then succeeds exactly when enough distinct nodes qualify)."""
    rest = req.cell_pcpus[1:]
    return all(n == rest[0] for n in rest) and (not rest or req.cell_pcpus[0] >= rest[0])


def _memory_conditions(shape: Shape) -> list[Any]:
    out = []
    if shape.page_kib is not None:
        _, total, used = PAGE_COLUMNS[shape.page_kib]
        out.append(total - used >= bindparam("pages"))
    if shape.small_pages:
        out.append(HostNode.mem_total - HostNode.mem_used >= bindparam("mib"))
    return out


def _nodes_with(*conditions: Any) -> Any:
    """How many of the host's nodes meet the conditions (a correlated subquery)."""
    return (
        select(func.count())
        .select_from(HostNode)
        .where(HostNode.host_id == Host.id, *conditions)
        .scalar_subquery()
    )


def _refusal_statement(shape: Shape, cells: int) -> Executable:
    """Each host's first failing filter (in FILTERS' order), counted per filter.

    The host's summary columns settle most hosts (down, not admitted, not wired,
    too few free pCPUs or pages on any node); only the hosts they let through
    have their nodes counted (CASE stops at the first branch that holds).
    """
    free = HostNode.rt_total - HostNode.rt_used
    memory = _memory_conditions(shape)
    first, rest = free >= bindparam("first_need"), free >= bindparam("rest_need")

    def fits(*extra: Any) -> Any:
        """``fit_nodes`` in SQL: a node for cell 0, and as many as cells for the rest."""
        one = _nodes_with(first, *extra) >= 1
        return one if cells == 1 else and_(one, _nodes_with(rest, *extra) >= cells)

    coarse_cpus = and_(
        Host.node_free_max >= bindparam("node_need"), Host.rt_free >= bindparam("total_need")
    )
    coarse_memory: list[Any] = []
    if shape.page_kib is not None:
        coarse_memory.append(PAGE_COLUMNS[shape.page_kib][0] >= bindparam("pages"))
    if shape.small_pages:
        coarse_memory.append(Host.mem_free_max >= bindparam("mib"))
    likes = [Host.physnets.like(bindparam(f"net{i}")) for i in range(shape.networks)]
    registered = Host.registered_at.is_not(None)  # it has nodes then (an invariant)
    alive = and_(Host.heartbeat_at.is_not(None), Host.heartbeat_at >= bindparam("after"))
    checks: list[tuple[str, Any]] = [
        ("targeted", Host.name == bindparam("target") if shape.target else None),
        ("rtkvm_engine", Host.engine == RTKVM_ENGINE),
        ("registered", registered),
        ("agent_alive", alive),
        (
            "rt_ready",
            or_(Host.doctor_verdict == READY, Host.rt_waiver.is_not(None))
            if shape.needs_rt
            else None,
        ),
        (
            "qualified",
            and_(Host.qualified_at.is_not(None), Host.qualified_at >= bindparam("qualified_since"))
            if shape.qualified
            else None,
        ),
        ("dataplane_ready", Host.dataplane_state == READY if shape.need_dataplane else None),
        ("networks_wired", and_(*likes) if likes else None),
        ("cpus_fit", coarse_cpus),  # certainly too few free pCPUs: no node counted
        # one cell: a node with the pCPUs exists exactly when the most free node has them
        ("cpus_fit", fits() if cells > 1 else None),
        ("memory_fit", and_(*coarse_memory) if coarse_memory else None),
        ("memory_fit", fits(*memory) if memory else None),
        (
            "disk_fit",
            and_(
                Host.disk_gb_total.is_not(None),
                Host.disk_gb_total - Host.disk_gb_used >= bindparam("disk"),
            )
            if shape.disk
            else None,
        ),
    ]
    order = [name for name, _ in FILTERS]
    assert sorted(set(n for n, _ in checks), key=order.index) == order  # FILTERS' order
    failed = case(*[(not_(c), name) for name, c in checks if c is not None], else_="")
    per_host = select(failed.label("failed")).select_from(Host).subquery("per_host")
    return select(per_host.c.failed, func.count()).group_by(per_host.c.failed)


def refusal_counts(db: Database, req: Request, ctx: Context) -> dict[str, int]:
    """How many hosts fail each filter first ('' for those that pass them all)."""
    shape = Shape.of(req, spread=False, limit=None)
    cells = len(req.cell_pcpus)
    statement = db.prepared(("refusal", shape, cells), lambda: _refusal_statement(shape, cells))
    values = _values(req, ctx)
    values["first_need"] = req.cell_pcpus[0]
    values["rest_need"] = req.cell_pcpus[1] if cells > 1 else req.cell_pcpus[0]
    return {str(name): int(count) for name, count in db.fetch(statement, values)}
