"""CPU and NUMA topology of a host, read from the standard sysfs files.

Reads only what every Linux exposes (and what the partition planner may rely
on): /sys/devices/system/cpu/online, cpuN/topology/{core_id,
physical_package_id,thread_siblings_list}, /sys/devices/system/node/nodeN/
cpulist, and /sys/class/net/IFACE/device/numa_node. Per-node memory and
hugepages are read when present and reported as Unknown otherwise. This module
must not make policy (which CPU gets which role): that is the planner's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rtkvm.cpuset import CpuSet
from rtkvm.errors import HostReadError
from rtkvm.hostfs import HostFS, Unknown

CPU_DIR = "/sys/devices/system/cpu"
NODE_DIR = "/sys/devices/system/node"
NET_DIR = "/sys/class/net"

_NODE_NAME = re.compile(r"^node(\d+)$")
_HUGEPAGE_DIR = re.compile(r"^hugepages-(\d+)kB$")
_MEMINFO_TOTAL = re.compile(r"MemTotal:\s+(\d+)\s+kB")
_MEMINFO_FREE = re.compile(r"MemFree:\s+(\d+)\s+kB")


@dataclass(frozen=True)
class Core:
    """One physical core: the CPUs (hardware threads) that share it."""

    package: int
    core_id: int
    cpus: CpuSet
    node: int

    @property
    def first_cpu(self) -> int:
        return self.cpus.min()


@dataclass(frozen=True)
class HugepagePool:
    size_kb: int
    total: int
    free: int


@dataclass(frozen=True)
class NumaNode:
    id: int
    cpus: CpuSet
    mem_total_kb: int | Unknown
    mem_free_kb: int | Unknown
    hugepages: tuple[HugepagePool, ...] | Unknown


@dataclass(frozen=True)
class Nic:
    name: str
    node: int | None
    """NUMA node of the device; None when the kernel reports no affinity (-1)."""
    physical: bool
    """True when backed by a device (has /sys/class/net/NAME/device)."""


@dataclass(frozen=True)
class Topology:
    online: CpuSet
    cores: tuple[Core, ...]
    nodes: tuple[NumaNode, ...]
    nics: tuple[Nic, ...]
    numa_source: str = "sysfs"
    """'sysfs' when node directories exist, 'implicit' when the kernel has no NUMA."""
    _core_of_cpu: dict[int, Core] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for core in self.cores:
            for cpu in core.cpus:
                self._core_of_cpu[cpu] = core

    def core_of(self, cpu: int) -> Core:
        try:
            return self._core_of_cpu[cpu]
        except KeyError:
            raise HostReadError(f"{CPU_DIR}/cpu{cpu}", "CPU is not online") from None

    def siblings(self, cpu: int) -> CpuSet:
        return self.core_of(cpu).cpus

    def node(self, node_id: int) -> NumaNode:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise HostReadError(f"{NODE_DIR}/node{node_id}", "no such NUMA node")

    def node_of_cpu(self, cpu: int) -> int:
        return self.core_of(cpu).node

    def nic(self, name: str) -> Nic | None:
        return next((n for n in self.nics if n.name == name), None)

    @property
    def smt_active(self) -> bool:
        return any(len(core.cpus) > 1 for core in self.cores)

    def cores_on_node(self, node_id: int) -> list[Core]:
        return [c for c in self.cores if c.node == node_id]

    def whole_cores(self, cpus: CpuSet) -> bool:
        """True when ``cpus`` contains every sibling of each of its CPUs."""
        return all(self.siblings(cpu) <= cpus for cpu in cpus)


def read_topology(fs: HostFS) -> Topology:
    """Read the topology; raises HostReadError if the core files are missing."""
    online = CpuSet.parse(fs.read(f"{CPU_DIR}/online"))
    node_cpus = _read_node_cpus(fs)
    numa_source = "sysfs" if node_cpus else "implicit"
    if not node_cpus:
        node_cpus = {0: online}
    node_of: dict[int, int] = {}
    for node_id, cpus in node_cpus.items():
        for cpu in cpus:
            node_of[cpu] = node_id

    cores: dict[tuple[int, int], set[int]] = {}
    for cpu in online:
        base = f"{CPU_DIR}/cpu{cpu}/topology"
        package = _read_int(fs, f"{base}/physical_package_id")
        core_id = _read_int(fs, f"{base}/core_id")
        siblings = CpuSet.parse(fs.read(f"{base}/thread_siblings_list"))
        if cpu not in siblings:
            raise HostReadError(f"{base}/thread_siblings_list", f"does not list CPU {cpu} itself")
        cores.setdefault((package, core_id), set()).update(siblings & online)
        cores[(package, core_id)].add(cpu)

    core_list: list[Core] = []
    for (package, core_id), members in cores.items():
        cpuset = CpuSet(members)
        nodes = {node_of.get(c) for c in cpuset}
        if None in nodes:
            missing = sorted(c for c in cpuset if c not in node_of)
            raise HostReadError(NODE_DIR, f"CPUs {CpuSet(missing)} belong to no NUMA node")
        if len(nodes) != 1:
            raise HostReadError(NODE_DIR, f"core {core_id} of package {package} spans nodes")
        core_list.append(Core(package, core_id, cpuset, nodes.pop() or 0))
    core_list.sort(key=lambda c: c.first_cpu)

    nodes_out = tuple(
        _read_node(fs, node_id, cpus & online, numa_source)
        for node_id, cpus in sorted(node_cpus.items())
    )
    return Topology(online, tuple(core_list), nodes_out, _read_nics(fs), numa_source)


def _read_int(fs: HostFS, path: str) -> int:
    text = fs.read(path).strip()
    try:
        return int(text)
    except ValueError:
        raise HostReadError(path, f"expected an integer, found {text!r}") from None


def _read_node_cpus(fs: HostFS) -> dict[int, CpuSet]:
    if not fs.is_dir(NODE_DIR):
        return {}
    result: dict[int, CpuSet] = {}
    for name in fs.listdir(NODE_DIR):
        match = _NODE_NAME.match(name)
        if match:
            result[int(match.group(1))] = CpuSet.parse(fs.read(f"{NODE_DIR}/{name}/cpulist"))
    return result


def _read_node(fs: HostFS, node_id: int, cpus: CpuSet, numa_source: str) -> NumaNode:
    if numa_source == "implicit":
        gone = Unknown(NODE_DIR, "kernel reports no NUMA nodes")
        return NumaNode(node_id, cpus, gone, gone, gone)
    base = f"{NODE_DIR}/node{node_id}"
    meminfo = fs.read_maybe(f"{base}/meminfo")
    total: int | Unknown
    free: int | Unknown
    if isinstance(meminfo, Unknown):
        total = free = meminfo
    else:
        total = _match_int(_MEMINFO_TOTAL, meminfo, f"{base}/meminfo", "MemTotal")
        free = _match_int(_MEMINFO_FREE, meminfo, f"{base}/meminfo", "MemFree")
    return NumaNode(node_id, cpus, total, free, read_hugepage_dir(fs, f"{base}/hugepages"))


def _match_int(pattern: re.Pattern[str], text: str, path: str, what: str) -> int | Unknown:
    match = pattern.search(text)
    return int(match.group(1)) if match else Unknown(path, f"no {what} line")


def read_hugepage_dir(fs: HostFS, directory: str) -> tuple[HugepagePool, ...] | Unknown:
    """The pools of a hugepages directory (global or per node), smallest page size first."""
    names = fs.listdir_maybe(directory)
    if isinstance(names, Unknown):
        return names
    pools: list[HugepagePool] = []
    for name in names:
        match = _HUGEPAGE_DIR.match(name)
        if not match:
            continue
        total = fs.read_line(f"{directory}/{name}/nr_hugepages")
        free = fs.read_line(f"{directory}/{name}/free_hugepages")
        if isinstance(total, Unknown):
            return total
        if isinstance(free, Unknown):
            return free
        try:
            pools.append(HugepagePool(int(match.group(1)), int(total), int(free)))
        except ValueError:
            return Unknown(f"{directory}/{name}", "hugepage counts are not integers")
    return tuple(sorted(pools, key=lambda p: p.size_kb))


def _read_nics(fs: HostFS) -> tuple[Nic, ...]:
    if not fs.is_dir(NET_DIR):
        return ()
    nics: list[Nic] = []
    for name in fs.listdir(NET_DIR):
        physical = fs.exists(f"{NET_DIR}/{name}/device")
        node: int | None = None
        raw = fs.read_line(f"{NET_DIR}/{name}/device/numa_node") if physical else None
        if isinstance(raw, str):
            try:
                value = int(raw)
            except ValueError:
                raise HostReadError(
                    f"{NET_DIR}/{name}/device/numa_node", f"expected an integer, found {raw!r}"
                ) from None
            node = value if value >= 0 else None
        nics.append(Nic(name, node, physical))
    return tuple(nics)
