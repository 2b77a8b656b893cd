"""Topology reader on small hand-built trees: cores, siblings, nodes, NICs, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.errors import HostReadError
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS, Unknown


def _write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def _cpu(root: Path, cpu: int, core: int, package: int, siblings: str) -> None:
    base = f"/sys/devices/system/cpu/cpu{cpu}/topology"
    _write(root, f"{base}/core_id", f"{core}\n")
    _write(root, f"{base}/physical_package_id", f"{package}\n")
    _write(root, f"{base}/thread_siblings_list", f"{siblings}\n")


@pytest.fixture()
def smt_host(tmp_path: Path) -> Path:
    """2 nodes x 2 cores x SMT2, Intel numbering (siblings N and N+4)."""
    _write(tmp_path, "/sys/devices/system/cpu/online", "0-7\n")
    for cpu in range(8):
        core = cpu % 4
        _cpu(tmp_path, cpu, core % 2, core // 2, f"{core},{core + 4}")
    _write(tmp_path, "/sys/devices/system/node/node0/cpulist", "0-1,4-5\n")
    _write(tmp_path, "/sys/devices/system/node/node1/cpulist", "2-3,6-7\n")
    _write(
        tmp_path,
        "/sys/devices/system/node/node1/meminfo",
        "Node 1 MemTotal:  1000 kB\nNode 1 MemFree:   400 kB\n",
    )
    hp = "/sys/devices/system/node/node1/hugepages/hugepages-2048kB"
    _write(tmp_path, f"{hp}/nr_hugepages", "16\n")
    _write(tmp_path, f"{hp}/free_hugepages", "10\n")
    _write(tmp_path, "/sys/class/net/ens1/device/numa_node", "1\n")
    _write(tmp_path, "/sys/class/net/eth9/device/numa_node", "-1\n")
    (tmp_path / "sys/class/net/lo").mkdir(parents=True)
    return tmp_path


def test_cores_siblings_and_nodes(smt_host: Path) -> None:
    topo = read_topology(HostFS(smt_host))
    assert topo.online == CpuSet.parse("0-7")
    assert [c.cpus.format() for c in topo.cores] == ["0,4", "1,5", "2,6", "3,7"]
    assert topo.siblings(6) == CpuSet.parse("2,6")
    assert topo.node_of_cpu(7) == 1
    assert topo.smt_active
    assert topo.whole_cores(CpuSet.parse("1,5"))
    assert not topo.whole_cores(CpuSet.parse("1"))
    assert [c.first_cpu for c in topo.cores_on_node(1)] == [2, 3]


def test_node_memory_and_hugepages(smt_host: Path) -> None:
    topo = read_topology(HostFS(smt_host))
    node1 = topo.node(1)
    assert node1.mem_total_kb == 1000 and node1.mem_free_kb == 400
    assert not isinstance(node1.hugepages, Unknown)
    assert [(p.size_kb, p.total, p.free) for p in node1.hugepages] == [(2048, 16, 10)]
    node0 = topo.node(0)
    assert isinstance(node0.mem_total_kb, Unknown)
    assert isinstance(node0.hugepages, Unknown)


def test_nics(smt_host: Path) -> None:
    topo = read_topology(HostFS(smt_host))
    ens1, eth9, lo = topo.nic("ens1"), topo.nic("eth9"), topo.nic("lo")
    assert ens1 is not None and ens1.node == 1 and ens1.physical
    assert eth9 is not None and eth9.node is None
    assert lo is not None and not lo.physical
    assert topo.nic("nope") is None


def test_host_without_numa_is_one_implicit_node(tmp_path: Path) -> None:
    _write(tmp_path, "/sys/devices/system/cpu/online", "0-1\n")
    _cpu(tmp_path, 0, 0, 0, "0")
    _cpu(tmp_path, 1, 1, 0, "1")
    topo = read_topology(HostFS(tmp_path))
    assert topo.numa_source == "implicit"
    assert [n.id for n in topo.nodes] == [0]
    assert topo.nodes[0].cpus == CpuSet.parse("0-1")
    assert not topo.smt_active


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: (r / "sys/devices/system/cpu/online").unlink(), "online: does not exist"),
        (
            lambda r: (r / "sys/devices/system/cpu/cpu3/topology/core_id").write_text("x\n"),
            "expected an integer",
        ),
        (
            lambda r: (r / "sys/devices/system/node/node1/cpulist").write_text("2,6-7\n"),
            "belong to no NUMA node",
        ),
        (
            lambda r: (r / "sys/devices/system/cpu/cpu1/topology/thread_siblings_list").write_text(
                "5\n"
            ),
            "does not list CPU 1",
        ),
    ],
)
def test_broken_trees_raise_clear_errors(smt_host: Path, mutate: object, message: str) -> None:
    assert callable(mutate)
    mutate(smt_host)
    with pytest.raises(HostReadError, match=message):
        read_topology(HostFS(smt_host))


def test_this_machine_reads() -> None:
    topo = read_topology(HostFS("/"))
    assert len(topo.online) >= 1
    assert topo.online == topo.nodes[0].cpus.union(*(n.cpus for n in topo.nodes))
