"""The registration payload: from host facts, plan, doctor, switch and wiring."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rtkvm.agent.inventory import (
    collect,
    dataplane_state,
    doctor_verdict,
    registration,
    wired_physnets,
)
from rtkvm.api.testing import Cloud, expect
from rtkvm.cpuset import CpuSet
from rtkvm.errors import InputError
from rtkvm.host.checks import shipped_checks
from rtkvm.host.doctor import evaluate
from rtkvm.host.observe import observe
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.net.lldp import Neighbor
from rtkvm.net.model import HostWiring, Uplink

from .conftest import HOST_ROOT, WIRING
from .fakes import FakeSwitch

THIS_MACHINE = HOST_ROOT.parent / "this-machine"


def test_payload_of_the_tuned_host(fs: HostFS, plan: PartitionPlan) -> None:
    report = collect(fs, plan, wiring=WIRING, switch=FakeSwitch())
    assert [(n.id, n.cpus) for n in report.topology.nodes] == [(0, "0-3"), (1, "4-7")]
    assert [(p.size_kb, p.total) for p in report.topology.nodes[1].hugepages] == [
        (2048, 0),
        (1048576, 4),
    ]
    assert PartitionPlan.model_validate(report.plan) == plan
    assert report.doctor.verdict == "ready"
    assert report.dataplane_state == "ready"
    assert report.physnets == ["blue"]


def test_an_untuned_host_reports_the_failed_checks() -> None:
    fs = HostFS(THIS_MACHINE)
    plan = PartitionPlan(
        housekeeping=CpuSet.parse("0"), rt_vcpu=CpuSet.parse("1"), dataplane=CpuSet()
    )
    report = collect(fs, plan)
    _, facts = observe(fs)
    expected = evaluate(shipped_checks(), facts, plan)
    assert report.doctor.verdict == "not-ready"
    assert report.doctor.failed == [f.id for f in expected.findings if f.blocking]
    assert "preempt_rt" in " ".join(report.doctor.failed).lower().replace("-", "_")
    assert report.dataplane_state == "none"
    assert report.physnets == []


def test_wired_physnets_need_an_existing_uplink() -> None:
    wiring = HostWiring((Uplink("blue", "eth0"), Uplink("red", "eth1"), Uplink("green", "eth2")))
    assert wired_physnets(wiring, ["lo", "eth2", "eth0"]) == ["blue", "green"]
    assert wired_physnets(HostWiring(), ["eth0"]) == []


def test_dataplane_states() -> None:
    assert dataplane_state(None) == "none"
    assert dataplane_state(FakeSwitch()) == "ready"
    assert dataplane_state(FakeSwitch(up=False)) == "down"


def test_unknown_topology_cannot_register(fs: HostFS, plan: PartitionPlan) -> None:
    _, facts = observe(fs)
    doctor = evaluate(shipped_checks(), facts, plan)
    facts["topology"] = Unknown("/sys/devices/system/cpu", "unreadable")
    with pytest.raises(InputError, match="topology could not be read"):
        registration(facts, plan, doctor, dataplane="none", physnets=[])
    assert doctor_verdict(doctor).verdict == "ready"


def test_the_api_accepts_the_payload(cloud: Cloud, fs: HostFS, plan: PartitionPlan) -> None:
    token = expect(cloud.admin.post("/v1/hosts", json={"name": "node1"}), 201)["agent_token"]
    agent = cloud.client(token)
    body = collect(fs, plan, wiring=WIRING).model_dump(mode="json")
    host = expect(agent.put("/v1/agent/host", json=body), 200)
    assert [(n["node"], n["rt_pcpus"], n["hugepages_1g_total"]) for n in host["nodes"]] == [
        (0, "2-3", 4),
        (1, "4-7", 4),
    ]


def test_a_pulled_cable_or_a_wrong_neighbour_is_no_wire(
    tmp_path: Path, plan: PartitionPlan
) -> None:
    root = tmp_path / "host"
    shutil.copytree(HOST_ROOT, root)
    fs = HostFS(root)
    wiring = HostWiring((Uplink("blue", "ens1f0", expect_neighbor="tor-1"),))
    assert collect(fs, plan, wiring=wiring).physnets == ["blue"]  # carrier up, no LLDP asked

    seen = {"ens1f0": Neighbor("ens1f0", "tor-2", "Ethernet7")}
    assert collect(fs, plan, wiring=wiring, neighbors=lambda: seen).physnets == []
    seen = {"ens1f0": Neighbor("ens1f0", "tor-1", "Ethernet7")}
    assert collect(fs, plan, wiring=wiring, neighbors=lambda: seen).physnets == ["blue"]

    (root / "sys/class/net/ens1f0/carrier").write_text("0\n")  # the cable is pulled
    assert collect(fs, plan, wiring=wiring).physnets == []


def test_a_wire_the_switch_has_no_bridge_for_is_not_offered(
    fs: HostFS, plan: PartitionPlan
) -> None:
    assert collect(fs, plan, wiring=WIRING, switch=FakeSwitch()).physnets == ["blue"]
    unswitched = FakeSwitch(physnets=("red",))
    assert collect(fs, plan, wiring=WIRING, switch=unswitched).physnets == []
    assert collect(fs, plan, wiring=WIRING).physnets == ["blue"]  # no switch: the wires alone


def test_a_nic_dpdk_drives_is_a_wire_while_bound_and_its_link_is_up(
    tmp_path: Path, plan: PartitionPlan
) -> None:
    root = tmp_path / "host"
    shutil.copytree(HOST_ROOT, root)
    device = root / "sys/bus/pci/devices/0000:3b:00.0"
    device.mkdir(parents=True)
    (device / "numa_node").write_text("0\n")
    (root / "sys/bus/pci/drivers/vfio-pci").mkdir(parents=True)
    (device / "driver").symlink_to("../../../bus/pci/drivers/vfio-pci")
    fs = HostFS(root)
    wiring = HostWiring((Uplink("blue", "0000:3b:00.0"),))
    switch = FakeSwitch(physnets=("blue",))
    assert collect(fs, plan, wiring=wiring, switch=switch).physnets == ["blue"]
    down = FakeSwitch(physnets=("blue",), links_down=("blue",))  # OVS: link_state down
    report = collect(fs, plan, wiring=wiring, switch=down)
    assert report.physnets == []
    assert report.dataplane is not None and report.dataplane.links_down == ["blue"]
    (device / "driver").unlink()  # given back to the kernel's driver: no DPDK uplink
    (root / "sys/bus/pci/drivers/ixgbe").mkdir(parents=True)
    (device / "driver").symlink_to("../../../bus/pci/drivers/ixgbe")
    assert collect(fs, plan, wiring=wiring, switch=switch).physnets == []


def test_the_tuning_drift_travels_with_the_host(
    cloud: Cloud, fs: HostFS, plan: PartitionPlan
) -> None:
    report = collect(fs, plan, wiring=WIRING)
    assert report.tuning_drift is None  # the fixture was not tuned by rtkvm
    token = expect(cloud.admin.post("/v1/hosts", json={"name": "node1"}), 201)["agent_token"]
    body = report.model_copy(update={"tuning_drift": ["sysctl:kernel.ksm (run): 1, expected 2"]})
    host = expect(cloud.client(token).put("/v1/agent/host", json=body.model_dump(mode="json")), 200)
    assert host["tuning_drift"] == ["sysctl:kernel.ksm (run): 1, expected 2"]
