"""Load host snapshots from the database in two flat queries.

One query for hosts, one for their NUMA nodes; rows become frozen
:class:`HostSnapshot` values. Uses SQLAlchemy Core (no ORM objects) so that
10,000 hosts load in tens of milliseconds. Must not decide anything.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtkvm.db.models import Host, HostNode
from rtkvm.scheduler.hostdata import HP_1G_KIB, HP_2M_KIB
from rtkvm.scheduler.snapshot import HostSnapshot, NodeSnapshot


def load_hosts(session: Session) -> list[HostSnapshot]:
    """Every host with its nodes' free RT pCPUs and hugepages, as of this session."""
    nodes: dict[int, list[NodeSnapshot]] = {}
    rows = session.execute(
        select(
            HostNode.host_id,
            HostNode.node,
            HostNode.rt_total,
            HostNode.rt_used,
            HostNode.hp2m_total,
            HostNode.hp2m_used,
            HostNode.hp1g_total,
            HostNode.hp1g_used,
        )
    )
    for host_id, node, rt_total, rt_used, t2, u2, t1, u1 in rows:
        nodes.setdefault(host_id, []).append(
            NodeSnapshot(
                node, rt_total, rt_total - rt_used, ((HP_2M_KIB, t2 - u2), (HP_1G_KIB, t1 - u1))
            )
        )
    hosts = session.execute(
        select(
            Host.id,
            Host.name,
            Host.heartbeat_at,
            Host.doctor_verdict,
            Host.dataplane_state,
            Host.physnets,
        )
    )
    physnet_cache: dict[str, frozenset[str]] = {}
    result = []
    for host_id, name, heartbeat, verdict, dataplane, physnets in hosts:
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
            )
        )
    return result
