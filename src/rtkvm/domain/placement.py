"""Pinning of an RT guest onto a partitioned host (pure).

Given the host's :class:`PartitionPlan`, its :class:`Topology`, the pCPUs
already allocated to other guests and an :class:`RtGuestSpec`, choose one
pCPU from the plan's ``rt_vcpu`` set for each vCPU (never two vCPUs on one
pCPU), each guest NUMA cell on one host node (distinct nodes for distinct
cells, hugepages free there when the host reports them), and the CPUs of the
emulator and I/O threads:

- ``isolate``: one extra pCPU from ``rt_vcpu`` on the node of cell 0;
- ``share``: the host's housekeeping CPUs (those on the guest's node if any);
- not set: the pCPUs of the guest's non-RT vCPUs (what Nova does), or, for a
  ``mixed`` guest, the housekeeping CPUs its non-RT vCPUs float on.

``hw:cpu_policy=mixed`` (Nova's mixed instances, with the RT mask naming the
dedicated vCPUs): only the RT vCPUs get a pCPU of their own; the guest's
non-RT vCPUs float over the host's housekeeping CPUs on the guest's node, so a
guest with one RT vCPU needs one RT pCPU, not two. Nothing floating is claimed.
``hw:cpu_policy=shared`` (an ordinary, non-RT guest): every vCPU floats so, and
its emulator with them; it claims no RT pCPU and never runs on one.

When nothing fits, :class:`PlanError` says what is free where. This module
does no I/O and renders no XML; it keeps no state (the caller tracks
allocations and passes them in).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtkvm.cpuset import CpuSet
from rtkvm.domain.spec import GuestCell, RtGuestSpec
from rtkvm.errors import InputError, PlanError
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Topology


@dataclass(frozen=True)
class Placement:
    """Where a guest runs: vCPU -> pCPU, emulator CPUs, host node per guest cell."""

    vcpu_pins: tuple[tuple[int, int], ...]
    """(vCPU, pCPU) pairs of the dedicated vCPUs, ascending by vCPU."""
    emulator_cpus: CpuSet
    cell_nodes: tuple[int, ...]
    """Host NUMA node of guest cell 0, 1, ..."""
    isolated_emulator_cpu: int | None = None
    floating_vcpus: CpuSet = field(default_factory=CpuSet)
    """vCPUs of a mixed guest that are not dedicated (its non-RT vCPUs)."""
    floating_cpus: CpuSet = field(default_factory=CpuSet)
    """Housekeeping CPUs the floating vCPUs may run on (shared, never claimed)."""

    def pcpus_of(self, vcpus: CpuSet) -> CpuSet:
        return CpuSet(p for v, p in self.vcpu_pins if v in vcpus)

    @property
    def vcpu_pcpus(self) -> CpuSet:
        return CpuSet(p for _, p in self.vcpu_pins)

    @property
    def claimed(self) -> CpuSet:
        """pCPUs this guest takes for itself: add them to the host's allocations."""
        extra = self.isolated_emulator_cpu
        return self.vcpu_pcpus | (CpuSet([extra]) if extra is not None else CpuSet())

    @property
    def host_nodes(self) -> CpuSet:
        return CpuSet(self.cell_nodes)


def place(
    spec: RtGuestSpec,
    plan: PartitionPlan,
    topology: Topology,
    allocated: CpuSet | None = None,
    *,
    check_hugepages: bool = True,
) -> Placement:
    """Choose pCPUs and nodes for ``spec``; raises PlanError with what is free.

    ``allocated``: pCPUs already taken by other guests (their ``claimed``).
    """
    allocated = allocated if allocated is not None else CpuSet()
    dedicated = spec.dedicated_vcpus
    unknown = plan.all_cpus - topology.online
    if unknown:
        raise InputError(
            f"the plan names CPUs {unknown} that this host does not have online "
            f"(online: {topology.online}): use the plan made for this host"
        )
    free = plan.rt_vcpu - allocated
    isolate = spec.emulator_threads_policy == "isolate"
    cells = spec.cells()
    used_nodes: list[int] = []
    chosen: dict[int, int] = {}
    extra_cpu: int | None = None
    reasons: list[str] = []
    for cell in cells:
        own = [v for v in cell.vcpus if v in dedicated]
        need = len(own) + (1 if isolate and cell.id == 0 else 0)
        node = _choose_node(spec, cell, need, free, topology, used_nodes, check_hugepages, reasons)
        if node is None:
            raise PlanError(_no_fit(spec, cell, len(own), need, free, allocated, topology, reasons))
        cpus = _ordered(free & topology.node(node).cpus, topology)
        for vcpu, pcpu in zip(own, cpus, strict=False):
            chosen[vcpu] = pcpu
        if isolate and cell.id == 0:
            extra_cpu = cpus[len(own)]
        free = free - CpuSet(cpus[:need])
        used_nodes.append(node)
    pins = tuple(sorted(chosen.items()))
    floating_vcpus, floating = floating_of(spec, plan, topology, used_nodes[0])
    emulator = _emulator_cpus(spec, plan, topology, pins, used_nodes[0], extra_cpu, floating)
    return Placement(pins, emulator, tuple(used_nodes), extra_cpu, floating_vcpus, floating)


def floating_of(
    spec: RtGuestSpec, plan: PartitionPlan, topology: Topology, node: int
) -> tuple[CpuSet, CpuSet]:
    """(floating vCPUs, the CPUs they float on) of a guest whose cell 0 is on ``node``.

    A mixed guest's non-RT vCPUs and every vCPU of a shared guest float over the
    housekeeping CPUs on that node, or over all of them when the node has none; a
    dedicated guest floats nothing.
    """
    vcpus = spec.floating_vcpus
    if not vcpus:
        return CpuSet(), CpuSet()
    return vcpus, _local_housekeeping(plan, topology, node)


def _local_housekeeping(plan: PartitionPlan, topology: Topology, node: int) -> CpuSet:
    """The housekeeping CPUs on ``node``, or all of them when the node has none."""
    return (plan.housekeeping & topology.node(node).cpus) or plan.housekeeping


def _ordered(cpus: CpuSet, topology: Topology) -> list[int]:
    """CPUs core by core (siblings together), lowest core first."""
    return sorted(cpus, key=lambda c: (topology.core_of(c).first_cpu, c))


def _choose_node(
    spec: RtGuestSpec,
    cell: GuestCell,
    need: int,
    free: CpuSet,
    topology: Topology,
    used: list[int],
    check_hugepages: bool,
    reasons: list[str],
) -> int | None:
    """Best fit: the node with the fewest free RT pCPUs that still holds the cell."""
    fits: list[tuple[int, int]] = []
    for node in topology.nodes:
        if node.id in used:
            continue
        have = len(free & node.cpus)
        if have < need:
            continue
        short = _hugepages_short(spec, cell, node.id, topology) if check_hugepages else None
        if short:
            reasons.append(short)
            continue
        fits.append((have, node.id))
    return min(fits)[1] if fits else None


def _hugepages_short(spec: RtGuestSpec, cell: GuestCell, node_id: int, topo: Topology) -> str:
    """Why the node lacks hugepages for the cell, or '' (also when unknown)."""
    if spec.page_size == "4k":
        return ""
    pools = topo.node(node_id).hugepages
    if not isinstance(pools, tuple):
        return ""
    needed = cell.memory_kib // spec.page_size_kib
    free = sum(p.free for p in pools if p.size_kb == spec.page_size_kib)
    if free >= needed:
        return ""
    return (
        f"node {node_id} has {free} free {spec.page_size} hugepages, cell {cell.id} "
        f"needs {needed} (reserve more in "
        f"/sys/devices/system/node/node{node_id}/hugepages/hugepages-{spec.page_size_kib}kB)"
    )


def _emulator_cpus(
    spec: RtGuestSpec,
    plan: PartitionPlan,
    topology: Topology,
    pins: tuple[tuple[int, int], ...],
    node: int,
    extra_cpu: int | None,
    floating: CpuSet,
) -> CpuSet:
    if extra_cpu is not None:
        return CpuSet([extra_cpu])
    if spec.emulator_threads_policy == "share":
        return _local_housekeeping(plan, topology, node)
    if floating:  # mixed: the emulator runs where the non-RT vCPUs float
        return floating
    non_rt = spec.housekeeping_vcpus
    if not non_rt:  # a non-RT pinned guest: the emulator floats over its own pCPUs
        return CpuSet(p for _, p in pins)
    return CpuSet(p for v, p in pins if v in non_rt)


def _no_fit(
    spec: RtGuestSpec,
    cell: GuestCell,
    own: int,
    need: int,
    free: CpuSet,
    allocated: CpuSet,
    topology: Topology,
    reasons: list[str],
) -> str:
    per_node = ", ".join(
        f"node {n.id}: {(free & n.cpus) or 'none'} ({len(free & n.cpus)})" for n in topology.nodes
    )
    extra = " (+1 for hw:emulator_threads_policy=isolate)" if need > own else ""
    cells = ""
    if spec.numa_nodes > 1:
        cells = f" (cell {cell.id} of {spec.numa_nodes}, each on its own node)"
    text = (
        f"flavor {spec.name!r} needs {own} RT pCPUs{extra} on one NUMA node"
        f"{cells}; free RT pCPUs: {per_node}; already allocated: {allocated or 'none'}"
    )
    if reasons:
        return text + "; " + "; ".join(dict.fromkeys(reasons))
    return text + (
        ". Stop a guest, use a flavor with fewer vCPUs, or re-plan the host with more rt_vcpu CPUs"
    )
