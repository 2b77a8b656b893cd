"""The switch configuration rtkvm computes: CPU roles, masks, hugepages, bridges, ports."""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.layout import (
    DataplaneCpus,
    GuestNic,
    UplinkPort,
    bridge_args,
    compute_layout,
    other_config_args,
    port_args,
    resolve_cpus,
)
from rtkvm.dataplane.settings import load_settings
from rtkvm.errors import NetworkError, PlanError
from rtkvm.host.partition import PartitionPlan
from rtkvm.net.model import HostWiring, UnmanagedNetwork, Uplink

SETTINGS = load_settings()
# Two sockets of 8 CPUs: node 0 = 0-7, node 1 = 8-15.
NODE_OF = {cpu: cpu // 8 for cpu in range(16)}
ONLINE = CpuSet(range(16))
BIG_PLAN = PartitionPlan(
    housekeeping=CpuSet([0, 1, 8, 9]),
    rt_vcpu=CpuSet([2, 3, 4, 5, 10, 11]),
    dataplane=CpuSet([6, 7]),
)
WIRING = HostWiring((Uplink("phys1", "ens1f0"), Uplink("phys2", "ens1f1")))


def _cpus(plan: PartitionPlan = BIG_PLAN) -> DataplaneCpus:
    return resolve_cpus(plan, online=ONLINE, node_of_cpu=NODE_OF)


def test_cpu_roles_from_plan() -> None:
    cpus = _cpus()
    assert cpus.pmd == CpuSet([6, 7])
    assert cpus.lcore == CpuSet([0])  # a housekeeping CPU on the PMDs' node
    assert cpus.process == CpuSet([0, 1, 8, 9])
    assert not cpus.shared_with_rt and cpus.warnings == ()


def test_lcore_follows_the_pmd_node() -> None:
    plan = PartitionPlan(
        housekeeping=CpuSet([0, 8]), rt_vcpu=CpuSet([1, 2]), dataplane=CpuSet([14, 15])
    )
    assert _cpus(plan).lcore == CpuSet([8])


def test_two_cpu_host_has_no_room_for_a_data_plane() -> None:
    plan = PartitionPlan(housekeeping=CpuSet([0]), rt_vcpu=CpuSet([1]), dataplane=CpuSet())
    two = CpuSet([0, 1])
    with pytest.raises(PlanError, match="not enough CPUs for a separate data plane"):
        resolve_cpus(plan, online=two, node_of_cpu={0: 0, 1: 0})
    with pytest.raises(PlanError, match="--share-with-rt-vcpus"):
        resolve_cpus(plan, online=two, node_of_cpu={}, dataplane_override=CpuSet([1]))
    shared = resolve_cpus(
        plan,
        online=two,
        node_of_cpu={},
        dataplane_override=CpuSet([1]),
        allow_shared_with_rt=True,
    )
    assert shared.shared_with_rt and "means nothing" in shared.warnings[0]


@pytest.mark.parametrize(
    ("override", "message"),
    [(CpuSet([0]), "housekeeping CPUs"), (CpuSet([16]), "not online")],
)
def test_bad_dataplane_override(override: CpuSet, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        resolve_cpus(BIG_PLAN, online=ONLINE, node_of_cpu=NODE_OF, dataplane_override=override)


def test_other_config_masks_and_socket_mem() -> None:
    layout = compute_layout(
        SETTINGS,
        _cpus(),
        node_of_cpu=NODE_OF,
        nodes=[0, 1],
        networks=[],
        wiring=WIRING,
        socket_dir="/run/rtkvm/vhost",
    )
    oc = layout.other_config
    assert oc["pmd-cpu-mask"] == "0xc0"
    assert oc["dpdk-lcore-mask"] == "0x1"
    assert oc["dpdk-socket-mem"] == "512,0"  # only the PMDs' node gets memory
    assert oc["dpdk-init"] == "true" and oc["pmd-maxsleep"] == "0"
    assert layout.hugepages == {0: 288}  # (512 MiB socket memory + 64 MiB headroom) / 2 MiB


def test_pmds_on_both_nodes_and_masks_beyond_32_cpus() -> None:
    plan = PartitionPlan(housekeeping=CpuSet([0]), rt_vcpu=CpuSet([1]), dataplane=CpuSet([2, 40]))
    node_of = {cpu: cpu // 32 for cpu in range(64)}
    cpus = resolve_cpus(plan, online=CpuSet(range(64)), node_of_cpu=node_of)
    layout = compute_layout(
        SETTINGS, cpus, node_of_cpu=node_of, nodes=[0, 1], networks=[], wiring=WIRING,
        socket_dir="/run/rtkvm/vhost",
    )  # fmt: skip
    assert layout.other_config["pmd-cpu-mask"] == hex((1 << 40) | (1 << 2)) == "0x10000000004"
    assert layout.other_config["dpdk-socket-mem"] == "512,512"
    assert layout.hugepages == {0: 288, 1: 288}


def test_bridges_ports_and_vlans() -> None:
    networks = [
        UnmanagedNetwork("blue", "phys1", 100),
        UnmanagedNetwork("green", "phys1", 200),
        UnmanagedNetwork("red", "phys2"),
    ]
    nics = [GuestNic("g1", 0, "blue"), GuestNic("g2", 0, "green"), GuestNic("g3", 1, "red")]
    layout = compute_layout(
        SETTINGS, _cpus(), node_of_cpu=NODE_OF, nodes=[0, 1], networks=networks,
        wiring=WIRING, socket_dir="/run/rtkvm/vhost", nics=nics,
    )  # fmt: skip
    by_name = {b.name: b for b in layout.bridges}
    assert set(by_name) == {"rt-phys1", "rt-phys2"}
    assert by_name["rt-phys1"].uplink.trunks == (100, 200)
    assert by_name["rt-phys1"].networks == ("blue", "green")
    assert by_name["rt-phys2"].uplink.trunks == ()
    ports = {p.port: p for p in layout.ports}
    assert ports["vhu-g1-0"].bridge == "rt-phys1" and ports["vhu-g1-0"].tag == 100
    assert ports["vhu-g3-1"].bridge == "rt-phys2" and ports["vhu-g3-1"].tag is None
    assert ports["vhu-g3-1"].socket == PurePosixPath("/run/rtkvm/vhost/g3.1.sock")

    # the uplink is a DPDK port a PMD polls: af_packet on the kernel interface
    assert bridge_args(by_name["rt-phys1"]) == [
        "--may-exist", "add-br", "rt-phys1", "--", "set", "Bridge", "rt-phys1",
        "datapath_type=netdev", "fail_mode=standalone",
        "--", "--may-exist", "add-port", "rt-phys1", "up-phys1",
        "--", "set", "Interface", "up-phys1", "type=dpdk",
        "options:dpdk-devargs=\"net_af_packet_phys1,iface=ens1f0\"",
        "--", "set", "Port", "up-phys1", "vlan_mode=trunk", "trunks=100,200",
    ]  # fmt: skip
    old = dataclasses.replace(by_name["rt-phys2"], uplink=UplinkPort("ens2f0"))
    assert bridge_args(old)[-4:] == ["--may-exist", "add-port", "rt-phys2", "ens2f0"]
    assert port_args(ports["vhu-g1-0"]) == [
        "--may-exist", "add-port", "rt-phys1", "vhu-g1-0",
        "--", "set", "Interface", "vhu-g1-0", "type=dpdkvhostuserclient",
        "options:vhost-server-path=/run/rtkvm/vhost/g1.0.sock",
        "--", "set", "Port", "vhu-g1-0", "tag=100", "vlan_mode=access",
    ]  # fmt: skip
    args = other_config_args({"dpdk-extra": "--iova-mode=va --no-telemetry"})
    assert args[-1] == 'other_config:dpdk-extra="--iova-mode=va --no-telemetry"'


def test_network_label_with_no_uplink_on_this_host() -> None:
    with pytest.raises(NetworkError, match="'phys9' has no uplink on this host"):
        compute_layout(
            SETTINGS, _cpus(), node_of_cpu=NODE_OF, nodes=[0], socket_dir="/run/rtkvm/vhost",
            networks=[UnmanagedNetwork("blue", "phys9")], wiring=WIRING,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("nics", "message"),
    [
        ([GuestNic("g1", 0, "blue"), GuestNic("g1", 0, "blue")], "plugged twice"),
        ([GuestNic("g1", 0, "purple")], "no network 'purple'"),
        ([GuestNic("../../etc/x", 0, "blue")], "guest id"),
    ],
)
def test_bad_nics(nics: list[GuestNic], message: str) -> None:
    with pytest.raises((PlanError, NetworkError), match=message):
        compute_layout(
            SETTINGS, _cpus(), node_of_cpu=NODE_OF, nodes=[0], socket_dir="/run/rtkvm/vhost",
            networks=[UnmanagedNetwork("blue", "phys1")], wiring=WIRING, nics=nics,
        )  # fmt: skip
