"""A host's CPU partition map: per NUMA node and core, each CPU's role and its guests.

From the topology and plan the host's agent registered, and the pCPU claims
of the guests placed there, :func:`partition_map` says for every CPU whether it
is housekeeping, an RT vCPU CPU, a data-plane CPU or unassigned, which guests
hold it (a lab host under a waiver may let several share one, which is marked),
and :func:`render_map` draws it as HTML. Pure: it must not read the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rtkvm.api.dashboard.html import esc
from rtkvm.cpuset import CpuSet
from rtkvm.host.partition import PartitionPlan
from rtkvm.wire.topology import TopologyDoc

ROLES = ("housekeeping", "rt", "dataplane", "unassigned")


@dataclass(frozen=True)
class CpuCell:
    cpu: int
    role: str
    holders: tuple[str, ...] = ()

    @property
    def shared(self) -> bool:
        return len(self.holders) > 1


@dataclass
class NodeMap:
    node: int
    cores: list[tuple[str, list[CpuCell]]] = field(default_factory=list)


def role_of(cpu: int, plan: PartitionPlan) -> str:
    if cpu in plan.housekeeping:
        return "housekeeping"
    if cpu in plan.rt_vcpu:
        return "rt"
    if cpu in plan.dataplane:
        return "dataplane"
    return "unassigned"


def partition_map(
    topology: TopologyDoc, plan: PartitionPlan, claims: Iterable[tuple[int, str]]
) -> list[NodeMap]:
    """Nodes in order, their cores in order, each core's CPUs with role and holders."""
    holders: dict[int, list[str]] = {}
    for pcpu, server in claims:
        holders.setdefault(pcpu, []).append(server)
    nodes = {n.id: NodeMap(n.id) for n in sorted(topology.nodes, key=lambda n: n.id)}
    for core in sorted(topology.cores, key=lambda c: (c.node, c.package, c.core_id)):
        cells = [
            CpuCell(cpu, role_of(cpu, plan), tuple(sorted(holders.get(cpu, []))))
            for cpu in CpuSet.parse(core.cpus)
        ]
        target = nodes.setdefault(core.node, NodeMap(core.node))
        target.cores.append((f"socket {core.package} core {core.core_id}", cells))
    return list(nodes.values())


def render_map(nodes: list[NodeMap]) -> str:
    legend = "".join(f'<span class="r-{r}">{r}</span>' for r in ROLES)
    out = [f'<p class="legend">{legend}<span class="shared">shared by guests</span></p>']
    out.append('<div class="map">')
    for node in nodes:
        out.append(f'<section class="node" data-node="{node.node}"><h3>NUMA node {node.node}</h3>')
        for label, cells in node.cores:
            out.append(f'<div class="core" title="{esc(label)}">')
            for c in cells:
                shared = " shared" if c.shared else ""
                who = "<br>".join(esc(h) for h in c.holders)
                out.append(
                    f'<div class="cpu r-{c.role}{shared}" data-cpu="{c.cpu}" data-role="{c.role}">'
                    f"<b>CPU {c.cpu}</b>{who}</div>"
                )
            out.append("</div>")
        out.append("</section>")
    out.append("</div>")
    return "".join(out)
