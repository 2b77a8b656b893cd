"""The per-NUMA-node capacity the scheduler keeps, derived from a host's report.

:func:`node_rows` derives the RT pCPUs and hugepage totals per node that the
scheduler filters on from a topology and a partition plan.

This module is pure: it must not read the host or the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtkvm.cpuset import CpuSet
from rtkvm.errors import InputError
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Topology
from rtkvm.wire.topology import HP_1G_KIB, HP_2M_KIB, known_pools


@dataclass(frozen=True)
class NodeRow:
    """The per-node figures the scheduler keeps in the database."""

    node: int
    rt_pcpus: CpuSet
    hp2m_total: int
    hp1g_total: int


def node_rows(topology: Topology, plan: PartitionPlan) -> list[NodeRow]:
    """RT pCPUs and hugepage totals per node; refuses a plan made for another host."""
    unknown = plan.all_cpus - topology.online
    if unknown:
        raise InputError(
            f"the plan names CPUs {unknown} that the reported topology does not have "
            f"(online: {topology.online}): report the plan made for this host"
        )
    rows = []
    for n in topology.nodes:
        pools = known_pools(n)
        rows.append(
            NodeRow(
                node=n.id,
                rt_pcpus=plan.rt_vcpu & n.cpus,
                hp2m_total=sum(p.total for p in pools if p.size_kb == HP_2M_KIB),
                hp1g_total=sum(p.total for p in pools if p.size_kb == HP_1G_KIB),
            )
        )
    return rows


def rt_capacity(rt_pcpus: CpuSet, share: int) -> int:
    """Guest pCPU claims a node takes: each RT pCPU once, or ``share`` times on a lab host
    whose admin lets guests share RT pCPUs (never for latency)."""
    return len(rt_pcpus) * share
