"""Host snapshots from database rows: the columns a snapshot needs, and every host loaded.

:data:`HOST_COLUMNS` and :data:`NODE_COLUMNS` are what a
:class:`HostSnapshot` is made of; :func:`snapshots` turns rows of them (a
host's row once per NUMA node) into frozen snapshots. :func:`load_hosts`
reads every host (or those of ``ids``) in one statement, for the invariant
checker and the scheduler's last safety net: a decision itself reads only
the best few hosts, through ``queries``. Must not decide anything.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtkvm.db.models import Host, HostNode
from rtkvm.scheduler.snapshot import HostSnapshot, NodeSnapshot
from rtkvm.wire.topology import HP_1G_KIB, HP_2M_KIB

HOST_COLUMNS = (
    Host.id,
    Host.name,
    Host.heartbeat_at,
    Host.doctor_verdict,
    Host.dataplane_state,
    Host.physnets,
    Host.rt_waiver,
    Host.engine,
    Host.qualified_at,
    Host.disk_gb_total,
    Host.disk_gb_used,
)
HOSTS = len(HOST_COLUMNS)
NODE_COLUMNS = (
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


def load_hosts(session: Session, ids: list[int] | None = None) -> list[HostSnapshot]:
    """Every host (or those of ``ids``) with its nodes' free RT pCPUs, hugepages and RAM;
    a host that never registered has no nodes."""
    query = select(*HOST_COLUMNS, *NODE_COLUMNS).outerjoin(HostNode, HostNode.host_id == Host.id)
    if ids is not None:
        query = query.where(Host.id.in_(ids))
    return snapshots([tuple(row) for row in session.execute(query.order_by(Host.id))])


def snapshots(rows: list[tuple[Any, ...]]) -> list[HostSnapshot]:
    """Host snapshots from rows of HOST_COLUMNS + NODE_COLUMNS, hosts in first-seen order."""
    hosts: dict[int, tuple[Any, ...]] = {}
    nodes: dict[int, list[NodeSnapshot]] = {}
    wired: dict[str, frozenset[str]] = {}
    for row in rows:
        host_id = row[0]
        if host_id not in hosts:
            hosts[host_id] = row[:HOSTS]
            nodes[host_id] = []
        node, rt_total, rt_used, t2, u2, t1, u1, mem_total, mem_used = row[HOSTS:]
        if node is None:  # outer join: a host without nodes
            continue
        nodes[host_id].append(
            NodeSnapshot(
                node,
                rt_total,
                rt_total - rt_used,
                ((HP_2M_KIB, t2 - u2), (HP_1G_KIB, t1 - u1)),
                mem_total - mem_used,
            )
        )
    out = []
    for host_id, (
        _,
        name,
        heartbeat,
        verdict,
        dataplane,
        physnets,
        waiver,
        engine,
        qualified_at,
        disk_total,
        disk_used,
    ) in hosts.items():
        nets = wired.get(physnets)
        if nets is None:
            nets = wired[physnets] = _labels(physnets)
        node_list = tuple(sorted(nodes[host_id], key=lambda n: n.node))
        out.append(
            HostSnapshot(
                host_id,
                name,
                heartbeat,
                verdict,
                dataplane,
                nets,
                node_list,
                waiver,
                engine,
                qualified_at,
                None if disk_total is None else disk_total - disk_used,
            )
        )
    return out


def _labels(physnets: str) -> frozenset[str]:
    return frozenset(json.loads(physnets))
