"""The executor's conversion of the API's placement, and names."""

from __future__ import annotations

import pytest

from rtkvm.agent.executor import HostView, boot_words, placement_of
from rtkvm.agent.names import domain_name, guest_id, nic_mac
from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.names import check_guest_id, vhost_port
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
    p = placement_of(inst, host)
    assert p.vcpu_pins == ((0, 4), (1, 5))
    assert (p.emulator_cpus, p.cell_nodes, p.floating_vcpus) == (CpuSet([4]), (1,), CpuSet())


def test_a_mixed_guest_floats_where_the_control_plane_said(host: HostView) -> None:
    placement = {
        "vcpu_pins": [[1, 6]],
        "emulator_cpus": "0-1",
        "cell_nodes": [1],
        "floating_vcpus": "0",
        "floating_cpus": "0-1",
    }
    p = placement_of(_inst("building", placement=placement), host)
    assert (p.floating_vcpus, p.floating_cpus) == (CpuSet([0]), CpuSet.parse("0-1"))


def test_pins_outside_the_plan_and_missing_placements_are_refused(host: HostView) -> None:
    inst = _inst("building", vcpu_pins=[[0, 1], [1, 2]])
    with pytest.raises(InputError, match=r"pCPUs 1 that this host's plan does not give"):
        placement_of(inst, host)
    with pytest.raises(InputError, match="never scheduled"):
        placement_of(_inst("building", cell_nodes=[]), host)
    old = {"vcpu_pins": [[0, 2]], "emulator_cpus": "2", "cell_nodes": [0]}
    with pytest.raises(InputError, match="without its floating CPUs"):
        placement_of(_inst("building", placement=old), host)


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


def test_the_first_nics_address_is_told_to_the_guest_at_every_boot() -> None:
    """The probe image's /init sets rtkvm.ip on eth0; a NIC without address gets none."""
    blue = {"name": "blue", "physnet": "blue", "vlan": None}
    given = _inst("active", networks=[{**blue, "address": "192.0.2.10/24"}])
    assert boot_words(given) == "rtkvm.ip=192.0.2.10/24"
    assert boot_words(_inst("active", networks=[blue])) == ""
    assert boot_words(_inst("active")) == ""
