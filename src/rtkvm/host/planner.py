"""The CPU partition planner: topology + request -> PartitionPlan, or PlanError.

Pure: no I/O (the kernel-argument table comes in as a value; by default the
shipped one). It must not read the host, apply anything, or know about
guests: the tuning engine applies the plan, the guest layer pins into it.

Policy, and why:

- Whole cores. Every role is made of whole physical cores: the SMT siblings
  of a core share its pipeline and caches, so a sibling doing housekeeping
  work next to an RT vCPU would add latency. Requests are counted in cores.
- Housekeeping first. The lowest-numbered core of every NUMA node that has
  CPUs stays housekeeping: each node keeps a CPU for its own kernel threads,
  IRQs and the emulator threads of guests on it. That core is CPU 0's on
  CPU 0's node (the boot CPU carries work that cannot move, and some
  platforms cannot offline it); when CPU 0 is offline, the lowest online CPU
  plays that part. ``housekeeping_cores`` raises the number of reserved
  cores; the extra ones are taken round-robin over the nodes, lowest core
  first, so every node keeps a similar share. Cores that no role asked for
  are housekeeping too: the plan covers every online CPU.
- Data plane first, on one node. The switch's polling threads read the NIC's
  queues, so with ``dataplane_near`` they must all fit on that NIC's node
  (refused otherwise). Without it they go to the node with the most free
  cores (ties: the higher node), spilling over only if no node can hold them.
- RT vCPUs packed. They fill as few nodes as possible (a guest should not
  straddle nodes), preferring the data plane's node when that costs no extra
  node (vhost-user traffic stays local), then the nodes with most free cores,
  then the higher node. ``spread`` deals them round-robin instead, for hosts
  that run one RT guest per node.
- High end first. Within a node, the data plane and then the RT vCPUs take
  the highest-numbered cores, so housekeeping stays at the low end, next to
  CPU 0, where people look for it.
- SMT. ``use-siblings``: both threads of a core serve its role.
  ``idle-sibling``: the core's lowest CPU serves the role and its other
  threads go to ``idle_siblings``, isolated and unused, for the lowest
  latency at half the CPUs. Housekeeping always uses both threads.
- Outputs. Kernel arguments come from the shipped table (one reason per
  argument, see plan_args); none when nothing is isolated. Nova gets
  cpu_dedicated_set = RT vCPUs (pinned guests) and cpu_shared_set =
  housekeeping (unpinned guests, and emulator threads with
  hw:emulator_threads_policy=share); data plane and idle siblings are in
  neither set, so Nova never places anything there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rtkvm.cpuset import CpuSet
from rtkvm.errors import PlanError
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.plan_args import KernelArg, default_kernel_args, render_kernel_args
from rtkvm.host.topology import Core, Topology

SmtPolicy = Literal["use-siblings", "idle-sibling"]
SMT_POLICIES: tuple[SmtPolicy, ...] = ("use-siblings", "idle-sibling")


@dataclass(frozen=True)
class PlanRequest:
    """What the user asks for, in physical cores."""

    rt_cores: int
    dataplane_cores: int = 0
    dataplane_near: str | None = None
    """Name of a NIC; the data plane goes on its NUMA node."""
    smt: SmtPolicy = "use-siblings"
    housekeeping_cores: int = 0
    """Reserve at least this many housekeeping cores (the minimum is one per node)."""
    spread: bool = False
    """Deal RT cores round-robin over the nodes instead of packing them."""


@dataclass(frozen=True)
class NodeRoles:
    """What one NUMA node contributes to each role, as CPUs and core counts (for reports)."""

    node: int
    cores: int
    housekeeping: CpuSet
    rt_vcpu: CpuSet
    dataplane: CpuSet
    idle_siblings: CpuSet
    housekeeping_cores: int
    rt_vcpu_cores: int
    dataplane_cores: int


def plan_partition(
    topology: Topology,
    request: PlanRequest,
    *,
    kernel_args: Sequence[KernelArg] | None = None,
) -> PartitionPlan:
    """The partition for ``request`` on ``topology``; PlanError says what fits if it cannot."""
    by_node = _cores_by_node(topology)
    total = sum(len(cores) for cores in by_node.values())
    _check_request(request, total)
    reserved = _reserve_housekeeping(by_node, request.housekeeping_cores)
    free = {node: [c for c in cores if c not in reserved] for node, cores in by_node.items()}
    nic_node = _nic_node(topology, request, by_node)
    _check_capacity(request, by_node, free, nic_node)

    dataplane_cores, dataplane_node = _take_dataplane(free, request.dataplane_cores, nic_node)
    rt_cores = _take_rt(free, request.rt_cores, dataplane_node, spread=request.spread)

    rt, rt_idle = _role_cpus(rt_cores, request.smt)
    dataplane, dp_idle = _role_cpus(dataplane_cores, request.smt)
    idle = rt_idle | dp_idle
    housekeeping = topology.online - rt - dataplane - idle
    isolated = rt | dataplane | idle
    args = default_kernel_args() if kernel_args is None else kernel_args
    nova = {"cpu_shared_set": housekeeping.format()}
    if rt:
        nova = {"cpu_dedicated_set": rt.format(), **nova}
    return PartitionPlan(
        housekeeping=housekeeping,
        rt_vcpu=rt,
        dataplane=dataplane,
        idle_siblings=idle,
        kernel_cmdline=render_kernel_args(args, isolated=isolated, housekeeping=housekeeping),
        nova=nova,
        smt_policy=request.smt,
    )


def roles_by_node(topology: Topology, plan: PartitionPlan) -> list[NodeRoles]:
    """Split each role of a plan by NUMA node (nodes with online CPUs only)."""
    result: list[NodeRoles] = []
    for node, cores in sorted(_cores_by_node(topology).items()):
        cpus = CpuSet().union(*(core.cpus for core in cores))

        def serving(role: CpuSet, cores: list[Core] = cores) -> int:
            return sum(1 for core in cores if core.cpus & role)

        result.append(
            NodeRoles(
                node=node,
                cores=len(cores),
                housekeeping=plan.housekeeping & cpus,
                rt_vcpu=plan.rt_vcpu & cpus,
                dataplane=plan.dataplane & cpus,
                idle_siblings=plan.idle_siblings & cpus,
                housekeeping_cores=serving(plan.housekeeping),
                rt_vcpu_cores=serving(plan.rt_vcpu),
                dataplane_cores=serving(plan.dataplane),
            )
        )
    return result


# -- steps -------------------------------------------------------------------------------


def _cores_by_node(topology: Topology) -> dict[int, list[Core]]:
    """Cores per node, ascending by first CPU; nodes without online CPUs are left out."""
    by_node: dict[int, list[Core]] = {}
    for core in sorted(topology.cores, key=lambda c: c.first_cpu):
        by_node.setdefault(core.node, []).append(core)
    return by_node


def _check_request(request: PlanRequest, total: int) -> None:
    for flag, value in (
        ("--rt-cores", request.rt_cores),
        ("--dataplane-cores", request.dataplane_cores),
        ("--housekeeping-cores", request.housekeeping_cores),
    ):
        if value < 0:
            raise PlanError(f"{flag} must be 0 or more, got {value}")
    if request.smt not in SMT_POLICIES:
        raise PlanError(f"unknown SMT policy {request.smt!r}; use one of {', '.join(SMT_POLICIES)}")
    if request.dataplane_near is not None and request.dataplane_cores == 0:
        raise PlanError(
            f"--dataplane-near {request.dataplane_near} places the data plane, but no "
            "dataplane cores were requested; add --dataplane-cores N or drop --dataplane-near"
        )
    if request.housekeeping_cores > total:
        raise PlanError(
            f"requested {_count(request.housekeeping_cores, 'housekeeping core')}, but this "
            f"host has only {_count(total, 'core')}; ask for at most {total}"
        )


def _reserve_housekeeping(by_node: dict[int, list[Core]], wanted: int) -> set[Core]:
    """The lowest core of every node, then more round-robin until ``wanted`` are reserved."""
    reserved = {cores[0] for cores in by_node.values()}
    depth = 1
    while len(reserved) < wanted:
        for node in sorted(by_node):
            if len(reserved) >= wanted:
                break
            if depth < len(by_node[node]):
                reserved.add(by_node[node][depth])
        depth += 1
    return reserved


def _nic_node(
    topology: Topology, request: PlanRequest, by_node: dict[int, list[Core]]
) -> int | None:
    name = request.dataplane_near
    if name is None:
        return None
    nic = topology.nic(name)
    if nic is None:
        raise PlanError(f"no network interface named {name!r}; {_list_nics(topology)}")
    if nic.node is None:
        what = "it is a virtual interface" if not nic.physical else "its numa_node is -1"
        raise PlanError(
            f"{name} has no NUMA node: {what}; {_list_nics(topology)}, or drop --dataplane-near"
        )
    if nic.node not in by_node:
        raise PlanError(
            f"{name} is on NUMA node {nic.node}, which has no online CPUs; "
            "drop --dataplane-near or bring that node's CPUs online"
        )
    return nic.node


def _list_nics(topology: Topology) -> str:
    if not topology.nics:
        return "this host lists no network interfaces in /sys/class/net"
    described = []
    for nic in topology.nics:
        if nic.node is not None:
            described.append(f"{nic.name} (node {nic.node})")
        else:
            described.append(f"{nic.name} ({'virtual' if not nic.physical else 'no node'})")
    with_node = [n.name for n in topology.nics if n.node is not None]
    choose = f"choose one of {', '.join(with_node)}" if with_node else "none has a NUMA node"
    return f"interfaces here: {', '.join(described)}; {choose}"


def _check_capacity(
    request: PlanRequest,
    by_node: dict[int, list[Core]],
    free: dict[int, list[Core]],
    nic_node: int | None,
) -> None:
    rt, dp = request.rt_cores, request.dataplane_cores
    capacity = sum(len(cores) for cores in free.values())
    if rt + dp > capacity:
        asked = f"requested {_count(rt, 'RT core')}"
        if dp:
            asked += f" + {_count(dp, 'dataplane core')}"
        where = _describe_free(by_node, free)
        if capacity == 0:
            raise PlanError(
                f"{asked}, but no core can be isolated ({where}): every core must stay "
                "housekeeping, since CPU 0's core and one core per NUMA node are kept"
                + _housekeeping_hint(request)
            )
        if dp > capacity:
            fix = f"ask for at most {_count(capacity, 'dataplane core')} and no RT cores"
        elif dp:
            rt_fit = _count(capacity - dp, "RT core")
            fix = f"ask for at most {rt_fit} with {_count(dp, 'dataplane core')}"
        else:
            fix = f"ask for at most {_count(capacity, 'RT core')}"
        raise PlanError(
            f"{asked}, but only {_count(capacity, 'core')} can be isolated ({where}); {fix}"
            + _housekeeping_hint(request)
        )
    if nic_node is not None and dp > len(free[nic_node]):
        near = request.dataplane_near
        have = len(free[nic_node])
        raise PlanError(
            f"requested {_count(dp, 'dataplane core')} near {near} (node {nic_node}), but node "
            f"{nic_node} has only {have} of {_count(len(by_node[nic_node]), 'core')} free after "
            f"housekeeping; ask for at most {have} dataplane cores near {near}, "
            "or drop --dataplane-near"
        )


def _describe_free(by_node: dict[int, list[Core]], free: dict[int, list[Core]]) -> str:
    parts = []
    for index, node in enumerate(sorted(by_node)):
        text = f"node {node}: {len(free[node])} of {len(by_node[node])}"
        parts.append(text + (" free after housekeeping" if index == 0 else ""))
    return ", ".join(parts)


def _housekeeping_hint(request: PlanRequest) -> str:
    if request.housekeeping_cores:
        return f", or lower --housekeeping-cores (now {request.housekeeping_cores})"
    return ""


def _take_dataplane(
    free: dict[int, list[Core]], wanted: int, nic_node: int | None
) -> tuple[list[Core], int | None]:
    """Data plane cores and the node they (first) landed on."""
    if wanted == 0:
        return [], None
    order = [nic_node] if nic_node is not None else _by_room(free)
    taken = _take_along(free, order, wanted)
    return taken, taken[0].node


def _take_rt(
    free: dict[int, list[Core]], wanted: int, prefer: int | None, *, spread: bool
) -> list[Core]:
    if wanted == 0:
        return []
    if spread:
        return _deal(free, _by_room(free, prefer=prefer), wanted)
    plain = _by_room(free)
    fewest = _nodes_needed(free, plain, wanted)
    preferred = _by_room(free, prefer=prefer)
    order = preferred if _nodes_needed(free, preferred, wanted) == fewest else plain
    return _take_along(free, order, wanted)


def _by_room(free: dict[int, list[Core]], *, prefer: int | None = None) -> list[int]:
    """Nodes by free cores (most first, ties: higher node), ``prefer`` first if it has room."""
    order = sorted(free, key=lambda node: (-len(free[node]), -node))
    if prefer is not None and free.get(prefer):
        order.remove(prefer)
        order.insert(0, prefer)
    return order


def _nodes_needed(free: dict[int, list[Core]], order: list[int], wanted: int) -> int:
    remaining, used = wanted, 0
    for node in order:
        if remaining <= 0:
            break
        if free[node]:
            remaining -= len(free[node])
            used += 1
    return used


def _take_along(free: dict[int, list[Core]], order: list[int], wanted: int) -> list[Core]:
    """Take cores node by node along ``order``, highest-numbered first (mutates ``free``)."""
    taken: list[Core] = []
    for node in order:
        while free[node] and len(taken) < wanted:
            taken.append(free[node].pop())
    return taken


def _deal(free: dict[int, list[Core]], order: list[int], wanted: int) -> list[Core]:
    """Take one core per node in turn along ``order`` (mutates ``free``)."""
    taken: list[Core] = []
    while len(taken) < wanted:
        progressed = False
        for node in order:
            if free[node] and len(taken) < wanted:
                taken.append(free[node].pop())
                progressed = True
        if not progressed:
            break
    return taken


def _role_cpus(cores: list[Core], smt: SmtPolicy) -> tuple[CpuSet, CpuSet]:
    """The CPUs serving a role, and the siblings kept idle by the SMT policy."""
    if smt == "use-siblings":
        return CpuSet().union(*(c.cpus for c in cores)), CpuSet()
    serving = CpuSet(c.first_cpu for c in cores)
    return serving, CpuSet().union(*(c.cpus for c in cores)) - serving


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
