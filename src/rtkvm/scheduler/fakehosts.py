"""Simulated hosts for scheduler tests and benchmarks (shipped, like rtkvm.testing).

:func:`fake_host` builds the report an agent would send for a made-up
machine: a topology (sockets = NUMA nodes, cores, SMT), a partition plan
(first core of each node housekeeping, the rest RT vCPUs), hugepages and RAM
per node (what is not in the pools goes to 4k-page guests). Nothing here
touches a database or a host.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtkvm.cpuset import CpuSet
from rtkvm.host.partition import PartitionPlan
from rtkvm.wire.topology import HP_1G_KIB, HP_2M_KIB, CoreDoc, NodeDoc, PoolDoc, TopologyDoc


@dataclass(frozen=True)
class FakeHost:
    topology: TopologyDoc
    plan: PartitionPlan


def fake_host(
    *,
    nodes: int = 2,
    cores_per_node: int = 8,
    smt: bool = False,
    hugepages_2m: int = 4096,
    hugepages_1g: int = 0,
    memory_gib: int = 192,
) -> FakeHost:
    """A host with ``nodes`` NUMA nodes; CPU numbering is Linux's (siblings last)."""
    total_cores = nodes * cores_per_node
    core_docs = []
    node_cpus: dict[int, list[int]] = {n: [] for n in range(nodes)}
    housekeeping: list[int] = []
    rt: list[int] = []
    for index in range(total_cores):
        node = index // cores_per_node
        cpus = [index, index + total_cores] if smt else [index]
        node_cpus[node].extend(cpus)
        core_docs.append(
            CoreDoc(package=node, core_id=index % cores_per_node, cpus=str(CpuSet(cpus)), node=node)
        )
        (housekeeping if index % cores_per_node == 0 else rt).extend(cpus)
    pools = [PoolDoc(size_kb=HP_2M_KIB, total=hugepages_2m, free=hugepages_2m)]
    if hugepages_1g:
        pools.append(PoolDoc(size_kb=HP_1G_KIB, total=hugepages_1g, free=hugepages_1g))
    node_docs = [
        NodeDoc(id=n, cpus=str(CpuSet(c)), hugepages=pools, memory_kib=memory_gib * 1024 * 1024)
        for n, c in node_cpus.items()
    ]
    plan = PartitionPlan(housekeeping=CpuSet(housekeeping), rt_vcpu=CpuSet(rt), dataplane=CpuSet())
    return FakeHost(TopologyDoc(cores=core_docs, nodes=node_docs), plan)
