"""The per-NUMA-node capacity the scheduler keeps, derived from a host's report.

:func:`node_rows` derives the RT pCPUs, hugepage totals and the RAM left to
guests with 4k pages per node that the scheduler filters on, from a topology,
a partition plan and the memory the host keeps for itself.

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
    mem_mib: int
    """RAM guests with 4k pages may take: the node's memory less its hugepage pools and
    the host's reserve; 0 when the node's memory is unknown or all spoken for."""


def small_page_mib(memory_kib: int, pools_kib: int, reserved_mib: int) -> int:
    """What is left of a node's RAM for 4k-page guests, in whole MiB."""
    return max(0, (memory_kib - pools_kib) // 1024 - reserved_mib)


def node_rows(topology: Topology, plan: PartitionPlan, reserved_mib: int) -> list[NodeRow]:
    """RT pCPUs, hugepage totals and 4k-page RAM per node (``reserved_mib`` of each node's
    RAM stays with the host); refuses a plan made for another host."""
    unknown = plan.all_cpus - topology.online
    if unknown:
        raise InputError(
            f"the plan names CPUs {unknown} that the reported topology does not have "
            f"(online: {topology.online}): report the plan made for this host"
        )
    rows = []
    for n in topology.nodes:
        pools = known_pools(n)
        memory = n.mem_total_kb if isinstance(n.mem_total_kb, int) else 0
        pools_kib = sum(p.total * p.size_kb for p in pools)
        rows.append(
            NodeRow(
                node=n.id,
                rt_pcpus=plan.rt_vcpu & n.cpus,
                hp2m_total=sum(p.total for p in pools if p.size_kb == HP_2M_KIB),
                hp1g_total=sum(p.total for p in pools if p.size_kb == HP_1G_KIB),
                mem_mib=small_page_mib(memory, pools_kib, reserved_mib) if memory else 0,
            )
        )
    return rows


def rt_capacity(rt_pcpus: CpuSet, share: int) -> int:
    """Guest pCPU claims a node takes: each RT pCPU once, or ``share`` times on a lab host
    whose admin lets guests share RT pCPUs (never for latency)."""
    return len(rt_pcpus) * share
