"""The CPU partition planner: policy cases as tables, refusals, odd hosts, invariants.

Hosts are written with the synthetic builder and read back with the real
topology reader, so every case also proves the planner needs nothing beyond
the standard sysfs files.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtkvm.cpuset import CpuSet
from rtkvm.errors import DataError, PlanError
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.plan_args import KernelArg, parse_kernel_args
from rtkvm.host.planner import PlanRequest, plan_partition, roles_by_node
from rtkvm.host.topology import Topology, read_topology
from rtkvm.hostfs import HostFS
from rtkvm.testing.synthetic import SyntheticHost, big_512, small_no_smt, two_socket_smt


def _topology(spec: SyntheticHost, root: Path) -> Topology:
    return read_topology(HostFS(spec.write(root)))


@pytest.fixture()
def two_socket(tmp_path: Path) -> Topology:
    """2 nodes x 8 cores x SMT2: node 0 = CPUs 0-7,16-23, node 1 = 8-15,24-31, NIC on node 1."""
    return _topology(two_socket_smt(), tmp_path)


# -- policy, case by case ---------------------------------------------------------------
# On the two-socket host each node keeps its lowest core (CPU 0's core on node 0,
# CPU 8's on node 1), the data plane takes the highest cores of its node, RT the
# next highest, and both nodes have 7 free cores.


@pytest.mark.parametrize(
    ("request_", "housekeeping", "rt", "dataplane", "idle"),
    [
        # Nothing asked: everything stays housekeeping.
        (PlanRequest(rt_cores=0), "0-31", "", "", ""),
        # 4 RT cores fit on one node; equal room, so the higher node, top cores first.
        (PlanRequest(rt_cores=4), "0-11,16-27", "12-15,28-31", "", ""),
        # Data plane near ens1f0 (node 1) takes 14-15; RT joins it on node 1 (still one node).
        (
            PlanRequest(rt_cores=4, dataplane_cores=2, dataplane_near="ens1f0"),
            "0-9,16-25",
            "10-13,26-29",
            "14-15,30-31",
            "",
        ),
        # 6 RT cores no longer fit next to the data plane (5 left there): node 0 holds them.
        (
            PlanRequest(rt_cores=6, dataplane_cores=2, dataplane_near="ens1f0"),
            "0-1,8-13,16-17,24-29",
            "2-7,18-23",
            "14-15,30-31",
            "",
        ),
        # Everything that can be isolated: only the two reserved cores stay.
        (
            PlanRequest(rt_cores=12, dataplane_cores=2),
            "0,8,16,24",
            "1-7,9-13,17-23,25-29",
            "14-15,30-31",
            "",
        ),
        # Spread: 3 RT cores per node, each from the top of its node.
        (
            PlanRequest(rt_cores=6, spread=True),
            "0-4,8-12,16-20,24-28",
            "5-7,13-15,21-23,29-31",
            "",
            "",
        ),
        # Idle sibling: the first thread serves, the second is isolated and idle.
        (PlanRequest(rt_cores=2, smt="idle-sibling"), "0-13,16-29", "14-15", "", "30-31"),
        # More housekeeping: 4 reserved (0,1 on node 0; 8,9 on node 1) leaves 6 per node.
        (
            PlanRequest(rt_cores=12, housekeeping_cores=4),
            "0-1,8-9,16-17,24-25",
            "2-7,10-15,18-23,26-31",
            "",
            "",
        ),
    ],
)
def test_two_socket_plans(
    two_socket: Topology,
    request_: PlanRequest,
    housekeeping: str,
    rt: str,
    dataplane: str,
    idle: str,
) -> None:
    plan = plan_partition(two_socket, request_)
    assert plan.housekeeping == CpuSet.parse(housekeeping)
    assert plan.rt_vcpu == CpuSet.parse(rt)
    assert plan.dataplane == CpuSet.parse(dataplane)
    assert plan.idle_siblings == CpuSet.parse(idle)
    assert plan.smt_policy == request_.smt


def test_kernel_arguments_and_nova_follow_the_sets(two_socket: Topology) -> None:
    plan = plan_partition(
        two_socket, PlanRequest(rt_cores=2, dataplane_cores=1, smt="idle-sibling")
    )
    isolated = (plan.rt_vcpu | plan.dataplane | plan.idle_siblings).format()
    housekeeping = plan.housekeeping.format()
    assert plan.kernel_cmdline[0] == f"isolcpus=managed_irq,domain,{isolated}"
    for arg in (f"nohz_full={isolated}", f"rcu_nocbs={isolated}", "rcu_nocb_poll"):
        assert arg in plan.kernel_cmdline
    for arg in (f"irqaffinity={housekeeping}", f"kthread_cpus={housekeeping}"):
        assert arg in plan.kernel_cmdline
    for arg in ("skew_tick=1", "nosoftlockup", "tsc=reliable"):
        assert arg in plan.kernel_cmdline
    assert plan.nova == {
        "cpu_dedicated_set": plan.rt_vcpu.format(),
        "cpu_shared_set": housekeeping,
    }


def test_a_plan_that_isolates_nothing_changes_no_kernel_argument(two_socket: Topology) -> None:
    plan = plan_partition(two_socket, PlanRequest(rt_cores=0))
    assert plan.kernel_cmdline == ()
    assert plan.nova == {"cpu_shared_set": "0-31"}


def test_a_caller_may_pass_its_own_argument_table(two_socket: Topology) -> None:
    table = (KernelArg("isolcpus={isolated}", "only this"),)
    plan = plan_partition(two_socket, PlanRequest(rt_cores=1), kernel_args=table)
    assert plan.kernel_cmdline == (f"isolcpus={plan.rt_vcpu}",)


def test_plan_round_trips_through_json(two_socket: Topology) -> None:
    plan = plan_partition(two_socket, PlanRequest(rt_cores=3, dataplane_cores=1))
    assert PartitionPlan.from_json(plan.to_json()) == plan


def test_roles_by_node_counts_cores_not_threads(two_socket: Topology) -> None:
    plan = plan_partition(two_socket, PlanRequest(rt_cores=3, dataplane_cores=2, spread=True))
    rows = {row.node: row for row in roles_by_node(two_socket, plan)}
    assert sum(row.rt_vcpu_cores for row in rows.values()) == 3
    assert sum(row.dataplane_cores for row in rows.values()) == 2
    for row in rows.values():
        assert row.housekeeping_cores + row.rt_vcpu_cores + row.dataplane_cores == row.cores


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            PlanRequest(rt_cores=20, dataplane_cores=2),
            re.escape(
                "requested 20 RT cores + 2 dataplane cores, but only 14 cores can be isolated "
                "(node 0: 7 of 8 free after housekeeping, node 1: 7 of 8); "
                "ask for at most 12 RT cores with 2 dataplane cores"
            ),
        ),
        (PlanRequest(rt_cores=15), "ask for at most 14 RT cores"),
        (PlanRequest(rt_cores=0, dataplane_cores=15), "at most 14 dataplane cores and no RT"),
        (
            PlanRequest(rt_cores=13, housekeeping_cores=4),
            "only 12 cores can be isolated .* lower --housekeeping-cores",
        ),
        (
            PlanRequest(rt_cores=0, dataplane_cores=8, dataplane_near="ens1f0"),
            "near ens1f0 \\(node 1\\), but node 1 has only 7 of 8 cores free",
        ),
        (
            PlanRequest(rt_cores=1, dataplane_cores=1, dataplane_near="eth9"),
            "no network interface named 'eth9'; .*ens1f0 \\(node 1\\)",
        ),
        (
            PlanRequest(rt_cores=1, dataplane_cores=1, dataplane_near="lo"),
            "lo has no NUMA node: it is a virtual interface; .*choose one of ens1f0",
        ),
        (PlanRequest(rt_cores=1, dataplane_near="ens1f0"), "add --dataplane-cores"),
        (PlanRequest(rt_cores=-1), "--rt-cores must be 0 or more"),
        (PlanRequest(rt_cores=1, housekeeping_cores=17), "only 16 cores; ask for at most 16"),
    ],
)
def test_impossible_requests_say_what_fits(
    two_socket: Topology, request_: PlanRequest, message: str
) -> None:
    with pytest.raises(PlanError, match=message):
        plan_partition(two_socket, request_)


def test_nic_without_numa_affinity_is_refused(tmp_path: Path) -> None:
    topology = _topology(SyntheticHost(cores_per_socket=4, nics={"eno1": -1}), tmp_path)
    with pytest.raises(PlanError, match="eno1 has no NUMA node: its numa_node is -1"):
        plan_partition(topology, PlanRequest(rt_cores=1, dataplane_cores=1, dataplane_near="eno1"))


def test_nic_on_a_node_without_online_cpus_is_refused(tmp_path: Path) -> None:
    spec = SyntheticHost(sockets=2, cores_per_socket=2, nics={"eth1": 1}, offline=frozenset({2, 3}))
    topology = _topology(spec, tmp_path)
    with pytest.raises(PlanError, match="eth1 is on NUMA node 1, which has no online CPUs"):
        plan_partition(topology, PlanRequest(rt_cores=0, dataplane_cores=1, dataplane_near="eth1"))


# -- odd hosts --------------------------------------------------------------------------------


def test_one_cpu_host_can_only_plan_nothing(tmp_path: Path) -> None:
    topology = _topology(small_no_smt(1), tmp_path)
    plan = plan_partition(topology, PlanRequest(rt_cores=0))
    assert plan.housekeeping == CpuSet([0])
    assert not plan.isolated
    with pytest.raises(PlanError, match="requested 1 RT core, but no core can be isolated"):
        plan_partition(topology, PlanRequest(rt_cores=1))


def test_host_without_smt_isolates_single_threads(tmp_path: Path) -> None:
    topology = _topology(small_no_smt(4), tmp_path)
    for smt in ("use-siblings", "idle-sibling"):
        plan = plan_partition(topology, PlanRequest(rt_cores=2, dataplane_cores=1, smt=smt))
        assert (plan.housekeeping, plan.rt_vcpu, plan.dataplane) == (
            CpuSet([0]),
            CpuSet([1, 2]),
            CpuSet([3]),
        )
        assert not plan.idle_siblings


def test_cpu0_offline_keeps_the_lowest_online_core(tmp_path: Path) -> None:
    # CPU 0 offline: CPU 1 is the lowest online CPU, so its core (1,5) stays housekeeping;
    # CPU 4, alone on CPU 0's core, is an isolatable core like any other.
    spec = SyntheticHost(cores_per_socket=4, threads_per_core=2, offline=frozenset({0}))
    topology = _topology(spec, tmp_path)
    plan = plan_partition(topology, PlanRequest(rt_cores=3))
    assert plan.housekeeping == CpuSet([1, 5])
    assert plan.rt_vcpu == CpuSet.parse("2-4,6-7")


def test_host_without_numa_dirs_plans_on_one_implicit_node(tmp_path: Path) -> None:
    spec = SyntheticHost(sockets=2, cores_per_socket=4, numa_dirs=False, extras=False)
    topology = _topology(spec, tmp_path)
    plan = plan_partition(topology, PlanRequest(rt_cores=7))
    assert plan.housekeeping == CpuSet([0])


def test_sub_numa_nodes_each_keep_a_housekeeping_core(tmp_path: Path) -> None:
    spec = SyntheticHost(sockets=1, cores_per_socket=8, nodes_per_socket=4)
    topology = _topology(spec, tmp_path)
    plan = plan_partition(topology, PlanRequest(rt_cores=4))
    assert plan.housekeeping == CpuSet([0, 2, 4, 6])


def test_the_512_cpu_host_packs_rt_on_few_nodes(tmp_path: Path) -> None:
    topology = _topology(big_512(), tmp_path)
    plan = plan_partition(
        topology, PlanRequest(rt_cores=40, dataplane_cores=4, dataplane_near="ens7f0")
    )
    rows = [row for row in roles_by_node(topology, plan) if row.rt_vcpu or row.dataplane]
    # 31 cores free per node: 4 dataplane + 27 RT on ens7f0's node 5, 13 more RT elsewhere.
    assert {row.node for row in rows if row.dataplane} == {5}
    assert len(rows) == 2
    assert len(plan.rt_vcpu) == 80


# -- the argument table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[arg]\n", "not valid TOML"),
        ("x = 1\n", "non-empty list of \\[\\[arg\\]\\]"),
        ('[[arg]]\ntemplate = "a={cpus}"\nwhy = "w"\n', "unknown placeholders \\['cpus'\\]"),
        ('[[arg]]\ntemplate = "nosoftlockup"\nwhy = " "\n', "must say why"),
        ('[[arg]]\ntemplate = "a b"\nwhy = "w"\n', "without spaces"),
        ('[[arg]]\ntemplate = "a"\n', "exactly the keys"),
        ('[[arg]]\ntemplate = "a={isolated"\nwhy = "w"\n', "bad template"),
    ],
)
def test_bad_argument_tables_are_refused(text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_kernel_args(text, source="test.toml")


# -- invariants over random hosts and requests --------------------------------------------------


@st.composite
def hosts(draw: st.DrawFn) -> SyntheticHost:
    sockets = draw(st.integers(1, 3))
    nodes_per_socket = draw(st.sampled_from([1, 2]))
    cores_per_node = draw(st.integers(1, 5))
    threads = draw(st.integers(1, 2))
    total_cpus = sockets * nodes_per_socket * cores_per_node * threads
    offline = draw(st.frozensets(st.integers(0, total_cpus - 1), max_size=3))
    if len(offline) >= total_cpus:
        offline = frozenset()
    nic_node = draw(st.integers(0, sockets * nodes_per_socket - 1))
    return SyntheticHost(
        sockets=sockets,
        cores_per_socket=cores_per_node * nodes_per_socket,
        threads_per_core=threads,
        nodes_per_socket=nodes_per_socket,
        numbering=draw(st.sampled_from(["linux", "adjacent"])),
        nics={"nic0": nic_node},
        offline=offline,
        extras=False,
    )


@settings(max_examples=150, deadline=None)
@given(
    spec=hosts(),
    rt=st.integers(0, 40),
    dp=st.integers(0, 4),
    hk=st.integers(0, 5),
    smt=st.sampled_from(["use-siblings", "idle-sibling"]),
    near=st.booleans(),
    spread=st.booleans(),
)
def test_every_plan_keeps_the_invariants(
    spec: SyntheticHost, rt: int, dp: int, hk: int, smt: str, near: bool, spread: bool
) -> None:
    with tempfile.TemporaryDirectory() as root:
        topology = _topology(spec, Path(root))
    near_nic = "nic0" if near and dp else None
    request = PlanRequest(rt, dp, near_nic, smt, hk, spread)
    nodes = {core.node for core in topology.cores}
    total = len(topology.cores)
    capacity = total - max(hk, len(nodes))
    try:
        plan = plan_partition(topology, request)
    except PlanError as exc:
        # Refused only when it does not fit; a near refusal names the NIC.
        assert hk > total or rt + dp > capacity or (near_nic and "nic0" in str(exc))
        return
    assert rt + dp <= capacity

    roles = (plan.housekeeping, plan.rt_vcpu, plan.dataplane, plan.idle_siblings)
    assert sum(len(r) for r in roles) == len(topology.online)
    assert CpuSet().union(*roles) == topology.online

    # Whole cores: a core's CPUs serve one role, or one serves and the rest idle.
    role_cores = {"hk": 0, "rt": 0, "dp": 0}
    for core in topology.cores:
        if core.cpus <= plan.housekeeping:
            role_cores["hk"] += 1
            continue
        name, role = ("rt", plan.rt_vcpu) if core.cpus & plan.rt_vcpu else ("dp", plan.dataplane)
        role_cores[name] += 1
        if smt == "use-siblings":
            assert core.cpus <= role
        else:
            assert core.cpus & role == CpuSet([core.first_cpu])
            assert core.cpus - role <= plan.idle_siblings
    assert (role_cores["rt"], role_cores["dp"]) == (rt, dp)
    assert role_cores["hk"] >= max(hk, len(nodes))

    # Housekeeping: the lowest online CPU, and a whole core on every node.
    assert topology.online.min() in plan.housekeeping
    for node in nodes:
        assert any(c.cpus <= plan.housekeeping for c in topology.cores_on_node(node))
    if near_nic:
        assert all(topology.node_of_cpu(cpu) == spec.nics["nic0"] for cpu in plan.dataplane)

    # Packing: with the default reservation, RT that fits on one node lands on one node.
    if not spread and dp == 0 and hk <= len(nodes) and rt:
        room = max(len(topology.cores_on_node(n)) - 1 for n in nodes)
        if rt <= room:
            assert len({topology.node_of_cpu(cpu) for cpu in plan.rt_vcpu}) == 1

    # The command line and Nova follow the sets.
    if plan.isolated:
        assert f"isolcpus=managed_irq,domain,{plan.isolated}" in plan.kernel_cmdline
        assert f"irqaffinity={plan.housekeeping}" in plan.kernel_cmdline
    else:
        assert plan.kernel_cmdline == ()
    assert plan.nova["cpu_shared_set"] == plan.housekeeping.format()
    assert plan.nova.get("cpu_dedicated_set", "") == plan.rt_vcpu.format()


@settings(max_examples=60, deadline=None)
@given(spec=hosts(), rt=st.integers(1, 20))
def test_spread_deals_rt_cores_evenly(spec: SyntheticHost, rt: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        topology = _topology(spec, Path(root))
    nodes = sorted({core.node for core in topology.cores})
    if rt > len(topology.cores) - len(nodes):
        return
    plan = plan_partition(topology, PlanRequest(rt_cores=rt, spread=True))
    per_node = {row.node: row.rt_vcpu_cores for row in roles_by_node(topology, plan)}
    room = {n: len(topology.cores_on_node(n)) - 1 for n in nodes}
    for a in nodes:
        for b in nodes:
            # A node with fewer RT cores than another by 2 or more must be full.
            if per_node[a] < per_node[b] - 1:
                assert per_node[a] == room[a]
