"""Load host snapshots from the database.

:func:`load_hosts` reads every host (one query for hosts, one for their
NUMA nodes) for explanations; :func:`load_prefiltered` lets SQL drop the
hosts that cannot fit and returns only the best few for the pure filters
and weighers. Rows become frozen :class:`HostSnapshot` values, through
SQLAlchemy Core (no ORM objects). Must not decide anything.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtkvm.db.models import Host, HostNode
from rtkvm.scheduler.snapshot import HostSnapshot, NodeSnapshot
from rtkvm.wire.topology import HP_1G_KIB, HP_2M_KIB


def load_hosts(session: Session, ids: list[int] | None = None) -> list[HostSnapshot]:
    """Every host (or those of ``ids``) with its nodes' free RT pCPUs, hugepages and RAM."""
    nodes: dict[int, list[NodeSnapshot]] = {}
    node_query = select(
        HostNode.host_id,
        HostNode.node,
        HostNode.rt_total,
        HostNode.rt_used,
        HostNode.hp2m_total,
        HostNode.hp2m_used,
        HostNode.hp1g_total,
        HostNode.hp1g_used,
        HostNode.mem_total,
        HostNode.mem_used,
    )
    if ids is not None:
        node_query = node_query.where(HostNode.host_id.in_(ids))
    rows = session.execute(node_query)
    for host_id, node, rt_total, rt_used, t2, u2, t1, u1, mem_total, mem_used in rows:
        nodes.setdefault(host_id, []).append(
            NodeSnapshot(
                node,
                rt_total,
                rt_total - rt_used,
                ((HP_2M_KIB, t2 - u2), (HP_1G_KIB, t1 - u1)),
                mem_total - mem_used,
            )
        )
    host_query = select(
        Host.id,
        Host.name,
        Host.heartbeat_at,
        Host.doctor_verdict,
        Host.dataplane_state,
        Host.physnets,
        Host.rt_waiver,
    )
    if ids is not None:
        host_query = host_query.where(Host.id.in_(ids))
    hosts = session.execute(host_query)
    physnet_cache: dict[str, frozenset[str]] = {}
    result = []
    for host_id, name, heartbeat, verdict, dataplane, physnets, waiver in hosts:
        wired = physnet_cache.get(physnets)
        if wired is None:
            wired = frozenset(json.loads(physnets))
            physnet_cache[physnets] = wired
        result.append(
            HostSnapshot(
                host_id,
                name,
                heartbeat,
                verdict,
                dataplane,
                wired,
                tuple(sorted(nodes.get(host_id, ()), key=lambda n: n.node)),
                waiver,
            )
        )
    return result


def load_prefiltered(
    session: Session,
    *,
    physnets: frozenset[str],
    need_dataplane: bool,
    heartbeat_after: float,
    min_node_free: int,
    page_kib: int,
    pages: int,
    mib: int,
    most_free_first: bool,
    limit: int,
) -> list[HostSnapshot]:
    """At most ``limit`` hosts that may fit, best first for the weigher, in SQL.

    A coarse superset of what the pure filters accept (alive, ready or
    waived, wired, a node with enough free RT pCPUs, a node with enough free
    hugepages or RAM for 4k pages), read from the hosts' capacity summary columns (one narrow row
    per host): the filters still decide on the snapshots returned. RT-ready
    hosts come before waived ones, as the weighers rank them. The full load
    is for explanations.
    """
    ready = Host.doctor_verdict == "ready"
    query = select(Host.id).where(
        Host.heartbeat_at >= heartbeat_after,
        Host.node_free_max >= min_node_free,
    )
    if pages and page_kib == HP_2M_KIB:
        query = query.where(Host.hp2m_free_max >= pages)
    elif pages and page_kib == HP_1G_KIB:
        query = query.where(Host.hp1g_free_max >= pages)
    if mib:
        query = query.where(Host.mem_free_max >= mib)
    if need_dataplane:
        query = query.where(Host.dataplane_state == "ready")
    for label in sorted(physnets):  # labels are [a-z0-9]: safe inside a LIKE pattern
        query = query.where(Host.physnets.like(f'%"{label}"%'))
    order = (Host.rt_free.desc() if most_free_first else Host.rt_free.asc(), Host.name)
    # Two index-ordered queries rather than one ORDER BY readiness: the common case
    # (enough RT-ready hosts) reads exactly what it read before waivers existed.
    ids = list(session.scalars(query.where(ready).order_by(*order).limit(limit)))
    if len(ids) < limit:
        waived = query.where(~ready, Host.rt_waiver.is_not(None))
        ids += session.scalars(waived.order_by(*order).limit(limit - len(ids)))
    if not ids:
        return []
    return load_hosts(session, ids)
