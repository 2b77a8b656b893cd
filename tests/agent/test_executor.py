"""The executor's conversion of the API's placement, and names."""

from __future__ import annotations

import pytest

from rtkvm.agent.executor import HostView, placement_of
from rtkvm.agent.names import domain_name, guest_id, nic_mac
from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.names import check_guest_id, vhost_port
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.errors import InputError
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS

from .test_reconcile import _inst

ID = "9de1a7a4-125a-4ce6-9c8f-58e3e79f7d39"


@pytest.fixture
def host(fs: HostFS, plan: PartitionPlan) -> HostView:
    return HostView(plan, read_topology(fs))


def test_dedicated_placement(host: HostView) -> None:
    inst = _inst("building", vcpu_pins=[[1, 5], [0, 4]], emulator_cpus="4", cell_nodes=[1])
    spec = RtGuestSpec.model_validate({"vcpus": 2, "memory_mib": 512, "realtime_mask": "^0"})
    p = placement_of(inst, spec, host)
    assert p.vcpu_pins == ((0, 4), (1, 5))
    assert (p.emulator_cpus, p.cell_nodes, p.floating_vcpus) == (CpuSet([4]), (1,), CpuSet())


def test_mixed_floats_on_the_guest_node_housekeeping(host: HostView) -> None:
    spec = RtGuestSpec.model_validate(
        {"vcpus": 2, "memory_mib": 512, "cpu_policy": "mixed", "realtime_mask": "^0"}
    )
    on0 = placement_of(_inst("building", vcpu_pins=[[1, 2]], cell_nodes=[0]), spec, host)
    assert (on0.floating_vcpus, on0.floating_cpus) == (CpuSet([0]), CpuSet.parse("0-1"))
    # node 1 has no housekeeping CPU: float on all of them, as placement does
    on1 = placement_of(_inst("building", vcpu_pins=[[1, 6]], cell_nodes=[1]), spec, host)
    assert on1.floating_cpus == CpuSet.parse("0-1")


def test_pins_outside_the_plan_are_refused(host: HostView) -> None:
    spec = RtGuestSpec.model_validate({"vcpus": 2, "memory_mib": 512, "realtime_mask": "^0"})
    inst = _inst("building", vcpu_pins=[[0, 1], [1, 2]])
    with pytest.raises(InputError, match=r"pCPUs 1 that this host's plan does not give"):
        placement_of(inst, spec, host)
    with pytest.raises(InputError, match="never scheduled"):
        placement_of(_inst("building", cell_nodes=[]), spec, host)


def test_names_fit_libvirt_and_the_switch() -> None:
    assert domain_name(ID) == "rtkvm-" + ID
    assert domain_name(ID.upper()) == "rtkvm-" + ID
    gid = guest_id(ID)
    assert check_guest_id(gid) == gid and len(gid) == 32
    assert vhost_port("/run/rtkvm/vhost", gid, 0).port == f"vhu-{gid}-0"
    assert nic_mac(ID, 0) != nic_mac(ID, 1)
    assert nic_mac(ID, 0) == nic_mac(ID, 0) and nic_mac(ID, 0).startswith("52:54:00:")
    with pytest.raises(InputError, match="not a UUID"):
        domain_name("../etc")
