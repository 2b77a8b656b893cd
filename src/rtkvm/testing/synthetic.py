"""Synthetic hosts: write the topology sysfs files of a made-up machine into a directory.

A :class:`SyntheticHost` describes a machine by its shape (sockets, cores per
socket, threads per core, NUMA nodes per socket, CPU numbering scheme, NICs,
memory and hugepages per node); :meth:`SyntheticHost.write` lays the
matching files under ``ROOT/sys`` so that ``HostFS(ROOT)`` reads it like a
real host:

- /sys/devices/system/cpu/{online,possible,present}
- /sys/devices/system/cpu/cpuN/online and, for online CPUs,
  cpuN/topology/{core_id,physical_package_id,thread_siblings_list,core_cpus_list}
- /sys/devices/system/node/{online,possible}, nodeN/{cpulist,meminfo} and
  nodeN/hugepages/hugepages-{2048,1048576}kB/{nr,free}_hugepages
- /sys/class/net/IFACE/device/numa_node and carrier (1) for physical NICs, a bare
  /sys/class/net/IFACE for virtual ones

Two CPU numbering schemes exist in the wild: ``linux`` (Intel and most x86
firmware: every core's first thread is numbered first, so CPU N and
N + total_cores are siblings) and ``adjacent`` (many AMD and ARM machines:
siblings are 2k and 2k+1). With ``extras=False`` only the standard files the
planner may rely on are written (no possible/present, core_cpus_list,
meminfo, hugepages), to prove the planner needs nothing else.

Named shapes: :func:`two_socket_smt`, :func:`big_512`, :func:`small_no_smt`.

This module only writes files into the directory it is given. It must not
read or write the real host, parse sysfs (the topology reader does that), or
make any policy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rtkvm.cpuset import CpuSet

Numbering = Literal["linux", "adjacent"]

HUGEPAGE_2M_KB = 2048
HUGEPAGE_1G_KB = 1048576


@dataclass(frozen=True)
class SyntheticHost:
    """The shape of a synthetic machine; :meth:`write` turns it into sysfs files."""

    sockets: int = 1
    cores_per_socket: int = 4
    threads_per_core: int = 1
    nodes_per_socket: int = 1
    """NUMA nodes per socket (sub-NUMA clustering gives 2 or 4); must divide the cores."""
    numbering: Numbering = "linux"
    nics: Mapping[str, int] = field(default_factory=dict)
    """Physical NICs: name -> NUMA node (-1 writes the kernel's 'no affinity')."""
    virtual_nics: tuple[str, ...] = ("lo",)
    """NICs without a device/ directory (lo, bridges, taps)."""
    mem_kb_per_node: int = 16 * 1024 * 1024
    hugepages_2m_per_node: int = 0
    hugepages_1g_per_node: int = 0
    offline: frozenset[int] = frozenset()
    """CPUs that exist but are offline (absent from 'online', no topology/ directory)."""
    numa_dirs: bool = True
    """False writes no /sys/devices/system/node at all (a kernel without NUMA)."""
    extras: bool = True
    """False writes only the standard files (see the module docstring)."""

    def __post_init__(self) -> None:
        for name in ("sockets", "cores_per_socket", "threads_per_core", "nodes_per_socket"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.cores_per_socket % self.nodes_per_socket:
            raise ValueError(
                f"nodes_per_socket ({self.nodes_per_socket}) must divide "
                f"cores_per_socket ({self.cores_per_socket})"
            )
        if self.numbering not in ("linux", "adjacent"):
            raise ValueError(f"numbering must be 'linux' or 'adjacent', got {self.numbering!r}")
        bad = sorted(c for c in self.offline if not 0 <= c < self.total_cpus)
        if bad:
            raise ValueError(f"offline CPUs {bad} do not exist (0..{self.total_cpus - 1})")
        if len(self.offline) >= self.total_cpus:
            raise ValueError("at least one CPU must stay online")
        for name, node in self.nics.items():
            if not -1 <= node < self.total_nodes:
                raise ValueError(f"NIC {name} is on node {node}, which does not exist")
        clash = set(self.nics) & set(self.virtual_nics)
        if clash:
            raise ValueError(f"NICs {sorted(clash)} are both physical and virtual")

    # -- shape ---------------------------------------------------------------------

    @property
    def total_cores(self) -> int:
        return self.sockets * self.cores_per_socket

    @property
    def total_cpus(self) -> int:
        return self.total_cores * self.threads_per_core

    @property
    def total_nodes(self) -> int:
        return self.sockets * self.nodes_per_socket

    @property
    def online(self) -> CpuSet:
        return CpuSet(range(self.total_cpus)) - CpuSet(self.offline)

    def cpu(self, core_index: int, thread: int) -> int:
        """The CPU number of a thread of a core (cores indexed 0..total_cores-1)."""
        if self.numbering == "linux":
            return thread * self.total_cores + core_index
        return core_index * self.threads_per_core + thread

    def node_of_core(self, core_index: int) -> int:
        """Cores of a socket are split into equal, contiguous runs, one per node."""
        socket, local = divmod(core_index, self.cores_per_socket)
        per_node = self.cores_per_socket // self.nodes_per_socket
        return socket * self.nodes_per_socket + local // per_node

    # -- writing ---------------------------------------------------------------------

    def write(self, root: str | os.PathLike[str]) -> Path:
        """Write the sysfs tree under ``root`` (created if missing); returns the root."""
        tree = _Tree(os.fspath(root))
        cpu_dir = "sys/devices/system/cpu"
        node_dir = "sys/devices/system/node"
        online = self.online
        everything = CpuSet(range(self.total_cpus))

        tree.mkdir(cpu_dir)
        tree.put(f"{cpu_dir}/online", online.format())
        if self.extras:
            tree.put(f"{cpu_dir}/possible", everything.format())
            tree.put(f"{cpu_dir}/present", everything.format())

        node_cpus: dict[int, set[int]] = {n: set() for n in range(self.total_nodes)}
        for core in range(self.total_cores):
            threads = [self.cpu(core, t) for t in range(self.threads_per_core)]
            live = CpuSet(threads) & online
            siblings = live.format()
            socket, core_id = divmod(core, self.cores_per_socket)
            node_cpus[self.node_of_core(core)].update(live)
            for cpu in threads:
                directory = f"{cpu_dir}/cpu{cpu}"
                tree.mkdir(directory)
                if self.extras:
                    tree.put(f"{directory}/online", "1" if cpu in live else "0")
                if cpu not in live:
                    continue
                topo = f"{directory}/topology"
                tree.mkdir(topo)
                tree.put(f"{topo}/core_id", str(core_id))
                tree.put(f"{topo}/physical_package_id", str(socket))
                tree.put(f"{topo}/thread_siblings_list", siblings)
                if self.extras:
                    tree.put(f"{topo}/core_cpus_list", siblings)

        if self.numa_dirs:
            tree.mkdir(node_dir)
            nodes = CpuSet(range(self.total_nodes)).format()
            if self.extras:
                tree.put(f"{node_dir}/online", nodes)
                tree.put(f"{node_dir}/possible", nodes)
            for node, cpus in node_cpus.items():
                self._write_node(tree, f"{node_dir}/node{node}", node, CpuSet(cpus))

        net_dir = "sys/class/net"
        tree.mkdir(net_dir)
        for name, node in self.nics.items():
            tree.mkdir(f"{net_dir}/{name}/device")
            tree.put(f"{net_dir}/{name}/device/numa_node", str(node))
            tree.put(f"{net_dir}/{name}/carrier", "1")
        for name in self.virtual_nics:
            tree.mkdir(f"{net_dir}/{name}")
        return Path(root)

    def _write_node(self, tree: _Tree, directory: str, node: int, cpus: CpuSet) -> None:
        tree.mkdir(directory)
        tree.put(f"{directory}/cpulist", cpus.format())
        if not self.extras:
            return
        hugepage_kb = self.hugepages_2m_per_node * HUGEPAGE_2M_KB
        hugepage_kb += self.hugepages_1g_per_node * HUGEPAGE_1G_KB
        free_kb = max(0, self.mem_kb_per_node - hugepage_kb - self.mem_kb_per_node // 10)
        tree.put(
            f"{directory}/meminfo",
            f"Node {node} MemTotal:       {self.mem_kb_per_node} kB\n"
            f"Node {node} MemFree:        {free_kb} kB\n"
            f"Node {node} HugePages_Total: {self.hugepages_2m_per_node}\n"
            f"Node {node} HugePages_Free:  {self.hugepages_2m_per_node}",
        )
        for size_kb, count in (
            (HUGEPAGE_2M_KB, self.hugepages_2m_per_node),
            (HUGEPAGE_1G_KB, self.hugepages_1g_per_node),
        ):
            pool = f"{directory}/hugepages/hugepages-{size_kb}kB"
            tree.mkdir(pool)
            tree.put(f"{pool}/nr_hugepages", str(count))
            tree.put(f"{pool}/free_hugepages", str(count))


class _Tree:
    """Writes files below a root with plain os calls: 3,000 files in about 0.1 s."""

    def __init__(self, root: str) -> None:
        self._root = root
        os.makedirs(root, exist_ok=True)  # noqa: PTH103

    def mkdir(self, relative: str) -> None:
        os.makedirs(os.path.join(self._root, relative), exist_ok=True)  # noqa: PTH103, PTH118

    def put(self, relative: str, text: str) -> None:
        """One sysfs-style file: the text and a newline. Its directory must exist."""
        path = os.path.join(self._root, relative)  # noqa: PTH118
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, (text + "\n").encode())
        finally:
            os.close(fd)


# -- named shapes ----------------------------------------------------------------------


def two_socket_smt() -> SyntheticHost:
    """2 sockets x 8 cores x SMT2 (32 CPUs, Linux numbering), one node per socket.

    A physical NIC ``ens1f0`` sits on node 1 and a virtual ``lo`` has no node;
    each node has 16 GiB with 512 x 2 MiB and 4 x 1 GiB hugepages.
    """
    return SyntheticHost(
        sockets=2,
        cores_per_socket=8,
        threads_per_core=2,
        nics={"ens1f0": 1},
        hugepages_2m_per_node=512,
        hugepages_1g_per_node=4,
    )


def big_512() -> SyntheticHost:
    """8 NUMA nodes x 32 cores x SMT2 = 512 CPUs: 2 sockets with 4 nodes each.

    NICs ``ens1f0`` (node 0) and ``ens7f0`` (node 5); 64 GiB and 1024 x 2 MiB
    hugepages per node. The benchmark's host.
    """
    return SyntheticHost(
        sockets=2,
        cores_per_socket=128,
        threads_per_core=2,
        nodes_per_socket=4,
        nics={"ens1f0": 0, "ens7f0": 5},
        mem_kb_per_node=64 * 1024 * 1024,
        hugepages_2m_per_node=1024,
    )


def small_no_smt(n: int) -> SyntheticHost:
    """One socket, one node, ``n`` cores without SMT (``n`` CPUs), NIC ``eth0`` on node 0."""
    return SyntheticHost(sockets=1, cores_per_socket=n, threads_per_core=1, nics={"eth0": 0})
