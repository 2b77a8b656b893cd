"""The synthetic host builder: the trees it writes read back as the shape asked for."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtkvm.cpuset import CpuSet
from rtkvm.host.topology import Topology, read_topology
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.testing.synthetic import (
    Numbering,
    SyntheticHost,
    big_512,
    small_no_smt,
    two_socket_smt,
)


def _read(spec: SyntheticHost, root: Path) -> Topology:
    return read_topology(HostFS(spec.write(root)))


@pytest.mark.parametrize(
    ("spec", "cpus", "cores", "nodes", "smt"),
    [
        (two_socket_smt(), 32, 16, 2, True),
        (big_512(), 512, 256, 8, True),
        (small_no_smt(1), 1, 1, 1, False),
        (small_no_smt(6), 6, 6, 1, False),
        (SyntheticHost(sockets=1, cores_per_socket=4, threads_per_core=4), 16, 4, 1, True),
        (SyntheticHost(sockets=4, cores_per_socket=6, nodes_per_socket=2), 24, 24, 8, False),
    ],
)
def test_named_and_custom_shapes_read_back(
    tmp_path: Path, spec: SyntheticHost, cpus: int, cores: int, nodes: int, smt: bool
) -> None:
    topo = _read(spec, tmp_path)
    assert topo.online == CpuSet(range(cpus))
    assert len(topo.cores) == cores
    assert len(topo.nodes) == nodes
    assert topo.smt_active is smt
    assert topo.numa_source == "sysfs"


@pytest.mark.parametrize(
    ("numbering", "cpu", "siblings"),
    [
        ("linux", 0, "0,16"),
        ("linux", 9, "9,25"),
        ("linux", 25, "9,25"),
        ("adjacent", 0, "0-1"),
        ("adjacent", 9, "8-9"),
        ("adjacent", 25, "24-25"),
    ],
)
def test_numbering_schemes_place_siblings(
    tmp_path: Path, numbering: Numbering, cpu: int, siblings: str
) -> None:
    spec = SyntheticHost(sockets=2, cores_per_socket=8, threads_per_core=2, numbering=numbering)
    topo = _read(spec, tmp_path)
    assert topo.siblings(cpu) == CpuSet.parse(siblings)


@pytest.mark.parametrize(
    ("numbering", "node1"),
    [("linux", "8-15,24-31"), ("adjacent", "16-31")],
)
def test_node_cpulists_follow_the_numbering(
    tmp_path: Path, numbering: Numbering, node1: str
) -> None:
    spec = SyntheticHost(sockets=2, cores_per_socket=8, threads_per_core=2, numbering=numbering)
    assert _read(spec, tmp_path).node(1).cpus == CpuSet.parse(node1)


def test_two_socket_smt_has_its_nic_memory_and_hugepages(tmp_path: Path) -> None:
    topo = _read(two_socket_smt(), tmp_path)
    nic = topo.nic("ens1f0")
    assert nic is not None and nic.physical and nic.node == 1
    lo = topo.nic("lo")
    assert lo is not None and not lo.physical and lo.node is None
    node = topo.node(1)
    assert node.mem_total_kb == 16 * 1024 * 1024
    assert not isinstance(node.hugepages, Unknown)
    assert {(p.size_kb, p.total, p.free) for p in node.hugepages} == {
        (2048, 512, 512),
        (1048576, 4, 4),
    }


def test_sub_numa_clustering_splits_each_socket(tmp_path: Path) -> None:
    spec = SyntheticHost(sockets=2, cores_per_socket=8, nodes_per_socket=4)
    topo = _read(spec, tmp_path)
    assert [n.cpus.format() for n in topo.nodes] == [f"{2 * i}-{2 * i + 1}" for i in range(8)]
    assert {c.package for c in topo.cores_on_node(5)} == {1}


def test_offline_cpu0_leaves_its_sibling_alone_on_the_core(tmp_path: Path) -> None:
    spec = SyntheticHost(sockets=1, cores_per_socket=4, threads_per_core=2, offline=frozenset({0}))
    topo = _read(spec, tmp_path)
    assert 0 not in topo.online
    assert topo.siblings(4) == CpuSet([4])
    assert not (tmp_path / "sys/devices/system/cpu/cpu0/topology").exists()
    assert (tmp_path / "sys/devices/system/cpu/cpu0/online").read_text() == "0\n"


def test_without_numa_dirs_the_reader_sees_one_implicit_node(tmp_path: Path) -> None:
    topo = _read(SyntheticHost(cores_per_socket=4, numa_dirs=False), tmp_path)
    assert topo.numa_source == "implicit"
    assert [n.cpus for n in topo.nodes] == [CpuSet(range(4))]


def test_minimal_tree_holds_only_the_standard_files(tmp_path: Path) -> None:
    spec = SyntheticHost(sockets=2, cores_per_socket=2, threads_per_core=2, extras=False)
    spec.write(tmp_path)
    files = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    allowed = ("online", "core_id", "physical_package_id", "thread_siblings_list", "cpulist")
    assert files and all(f.rsplit("/", 1)[-1] in allowed for f in files)
    topo = read_topology(HostFS(tmp_path))
    assert len(topo.cores) == 4
    assert isinstance(topo.node(0).mem_total_kb, Unknown)


def test_nic_without_numa_affinity_reads_as_no_node(tmp_path: Path) -> None:
    topo = _read(SyntheticHost(nics={"eno1": -1}), tmp_path)
    nic = topo.nic("eno1")
    assert nic is not None and nic.physical and nic.node is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sockets": 0}, "sockets must be at least 1"),
        ({"cores_per_socket": 6, "nodes_per_socket": 4}, "must divide"),
        ({"offline": frozenset({99})}, "do not exist"),
        ({"cores_per_socket": 1, "offline": frozenset({0})}, "at least one CPU"),
        ({"nics": {"eth0": 3}}, "does not exist"),
        ({"nics": {"lo": 0}}, "both physical and virtual"),
    ],
)
def test_impossible_shapes_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyntheticHost(**kwargs)


def test_big_512_is_written_well_under_a_second(tmp_path: Path) -> None:
    start = time.perf_counter()
    big_512().write(tmp_path)
    elapsed = time.perf_counter() - start
    # A generous bound for loaded CI machines; the benchmark reports the real number.
    assert elapsed < 3.0
    assert len(list((tmp_path / "sys/devices/system/cpu").glob("cpu*/topology"))) == 512


@settings(max_examples=40, deadline=None)
@given(
    sockets=st.integers(1, 3),
    nodes_per_socket=st.sampled_from([1, 2]),
    cores_per_node=st.integers(1, 4),
    threads=st.integers(1, 2),
    numbering=st.sampled_from(["linux", "adjacent"]),
)
def test_every_shape_reads_back_with_whole_cores_per_node(
    sockets: int, nodes_per_socket: int, cores_per_node: int, threads: int, numbering: Numbering
) -> None:
    spec = SyntheticHost(
        sockets=sockets,
        cores_per_socket=cores_per_node * nodes_per_socket,
        threads_per_core=threads,
        nodes_per_socket=nodes_per_socket,
        numbering=numbering,
    )
    with tempfile.TemporaryDirectory() as root:
        topo = read_topology(HostFS(spec.write(root)))
    assert len(topo.online) == sockets * nodes_per_socket * cores_per_node * threads
    assert all(len(core.cpus) == threads for core in topo.cores)
    assert len(topo.nodes) == sockets * nodes_per_socket
    for node in topo.nodes:
        assert len(topo.cores_on_node(node.id)) == cores_per_node
        assert CpuSet().union(*(c.cpus for c in topo.cores_on_node(node.id))) == node.cpus
