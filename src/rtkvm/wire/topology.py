"""A host's topology as it crosses the wire and sits in the database, and back.

:class:`TopologyDoc` is the wire and database form of a host's
:class:`~rtkvm.host.topology.Topology` (cores and NUMA nodes with hugepage
pools); :func:`topology_doc` and :meth:`TopologyDoc.to_topology` convert.

This module is pure: it must not read the host or the database.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rtkvm.cpuset import CpuSet
from rtkvm.errors import InputError
from rtkvm.host.topology import Core, HugepagePool, NumaNode, Topology

HP_2M_KIB = 2048
HP_1G_KIB = 1048576


class CoreDoc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    package: int = Field(ge=0)
    core_id: int = Field(ge=0)
    cpus: str
    """Kernel CPU list of the core's threads, e.g. ``2,34``."""
    node: int = Field(ge=0)

    @field_validator("cpus")
    @classmethod
    def _cpus(cls, value: str) -> str:
        if not CpuSet.parse(value):
            raise ValueError("a core has at least one CPU")
        return value


class PoolDoc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    size_kb: int = Field(gt=0)
    total: int = Field(ge=0)
    free: int = Field(ge=0)


class NodeDoc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int = Field(ge=0)
    cpus: str
    hugepages: list[PoolDoc] = []
    memory_kib: int = Field(default=0, ge=0)
    """The node's RAM (MemTotal), hugepage pools included; 0: unknown (then no guest
    with 4k pages is placed on the node)."""


class TopologyDoc(BaseModel):
    """A host's cores and NUMA nodes; the hugepage ``total`` is what guests may use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cores: list[CoreDoc] = Field(min_length=1)
    nodes: list[NodeDoc] = Field(min_length=1)

    def to_topology(self) -> Topology:
        """The domain value; raises InputError when cores and nodes disagree."""
        nodes = tuple(
            NumaNode(
                id=n.id,
                cpus=CpuSet.parse(n.cpus),
                mem_total_kb=n.memory_kib,
                mem_free_kb=0,
                hugepages=tuple(HugepagePool(p.size_kb, p.total, p.free) for p in n.hugepages),
            )
            for n in self.nodes
        )
        cores = tuple(Core(c.package, c.core_id, CpuSet.parse(c.cpus), c.node) for c in self.cores)
        online = CpuSet()
        for core in cores:
            if core.cpus & online:
                raise InputError(f"topology: CPUs {core.cpus & online} are in two cores")
            online = online | core.cpus
        node_ids = {n.id for n in nodes}
        for core in cores:
            if core.node not in node_ids:
                raise InputError(
                    f"topology: core {core.core_id} is on node {core.node}, which is not listed"
                )
            if not core.cpus <= nodes[[n.id for n in nodes].index(core.node)].cpus:
                raise InputError(
                    f"topology: core {core.core_id} CPUs {core.cpus} are not in node "
                    f"{core.node}'s CPU list"
                )
        return Topology(online=online, cores=cores, nodes=nodes, nics=())


def known_pools(node: NumaNode) -> tuple[HugepagePool, ...]:
    """A node's hugepage pools; none when they could not be read."""
    return node.hugepages if isinstance(node.hugepages, tuple) else ()


def topology_doc(topology: Topology) -> TopologyDoc:
    """The wire form of a topology read from a host (unknown hugepages become none)."""
    nodes = []
    for n in topology.nodes:
        pools = known_pools(n)
        nodes.append(
            NodeDoc(
                id=n.id,
                cpus=str(n.cpus),
                hugepages=[PoolDoc(size_kb=p.size_kb, total=p.total, free=p.free) for p in pools],
                memory_kib=n.mem_total_kb if isinstance(n.mem_total_kb, int) else 0,
            )
        )
    cores = [
        CoreDoc(package=c.package, core_id=c.core_id, cpus=str(c.cpus), node=c.node)
        for c in topology.cores
    ]
    return TopologyDoc(cores=cores, nodes=nodes)
