"""An uplink the wiring names by PCI address: a NIC bound to vfio-pci, which DPDK drives
itself (type=dpdk, dpdk-devargs=ADDR), on synthetic host trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtkvm.dataplane.backend import uplink_kind
from rtkvm.dataplane.layout import Bridge, bridge_args, uplink_port
from rtkvm.dataplane.settings import load_settings
from rtkvm.findings import Status
from rtkvm.hostfs import HostFS
from rtkvm.net.lldp import cross_check
from rtkvm.net.model import HostWiring, Uplink
from rtkvm.net.pcinic import dpdk_nics, is_pci_address, read_pci_nic
from rtkvm.testing.synthetic import SyntheticHost
from rtkvm.wire.node import DataplaneDoc

from .test_cli import _run

NIC = "0000:3b:00.0"
NETWORKS = '[[network]]\nname = "blue"\nphysnet = "p1"\n'
NETWORKS += '[[network]]\nname = "red"\nphysnet = "p2"\nvlan = 300\n'
WIRING = '[[uplink]]\nphysnet = "p1"\ninterface = "ens1"\n'
WIRING += f'[[uplink]]\nphysnet = "p2"\ninterface = "{NIC}"\n'


def _nic(root: Path, address: str, driver: str | None, node: int) -> None:
    """/sys/bus/pci/devices/ADDR with numa_node and a driver link, as sysfs has them."""
    device = root / "sys/bus/pci/devices" / address
    device.mkdir(parents=True)
    (device / "numa_node").write_text(f"{node}\n")
    if driver is not None:
        bound = root / "sys/bus/pci/drivers" / driver
        bound.mkdir(parents=True, exist_ok=True)
        (device / "driver").symlink_to(f"../../../bus/pci/drivers/{driver}")


@pytest.fixture
def host(tmp_path: Path) -> Path:
    SyntheticHost(sockets=2, cores_per_socket=4, nics={"ens1": 0}).write(tmp_path / "root")
    (tmp_path / "nets.toml").write_text(NETWORKS)
    (tmp_path / "wiring.toml").write_text(WIRING)
    return tmp_path


def _plan(host: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, out, err = _run(
        ["net", "plan", "--root", str(host / "root"), "--housekeeping", "0,4",
         "--rt-vcpus", "1-2", "--dataplane-cpus", "3", "--networks", str(host / "nets.toml"),
         "--wiring", str(host / "wiring.toml"), "--format", "json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_pci_addresses_are_told_from_interface_names() -> None:
    assert is_pci_address(NIC) and is_pci_address("0001:af:1f.7")
    for name in ("ens1f0", "3b:00.0", "0000:3b:00.8", "0000:3B:00.0", "0000:3b:00.0 "):
        assert not is_pci_address(name), name


def test_a_nic_bound_to_vfio_pci_is_a_polled_dpdk_uplink_and_warned_off_its_node(
    host: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _nic(host / "root", NIC, "vfio-pci", node=1)  # the PMD (CPU 3) is on node 0
    data = _plan(host, capsys)
    layout = data["layout"]
    assert isinstance(layout, dict)
    bridges = {b["physnet"]: b for b in layout["bridges"]}
    assert (bridges["p2"]["uplink"], bridges["p2"]["uplink_devargs"]) == (NIC, NIC)
    assert bridges["p1"]["uplink_devargs"] == "net_af_packet_p1,iface=ens1"
    assert data["availability"]["available"] == ["blue", "red"]  # type: ignore[index]
    [warning] = [w for w in layout["cpus"]["warnings"] if NIC in w]
    assert warning == (
        f"uplink NIC {NIC} of p2 is on NUMA node 1, its PMD CPUs 3 on node(s) 0: every frame "
        "crosses nodes; give the data plane a CPU on the NIC's node (rtkvm host plan "
        "--dataplane)"
    )


def test_a_nic_on_the_pmds_node_is_not_warned(
    host: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _nic(host / "root", NIC, "vfio-pci", node=0)
    layout = _plan(host, capsys)["layout"]
    assert isinstance(layout, dict)
    assert not [w for w in layout["cpus"]["warnings"] if NIC in w]


def test_a_nic_the_kernel_still_drives_is_no_uplink_and_says_how_to_bind_it(
    host: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _nic(host / "root", NIC, "ixgbe", node=0)
    assert _plan(host, capsys)["availability"]["available"] == ["blue"]  # type: ignore[index]
    code, out, _ = _run(
        ["net", "networks", "--root", str(host / "root"), "--no-lldp", "--format", "json",
         "--networks", str(host / "nets.toml"), "--wiring", str(host / "wiring.toml")],
        capsys,
    )  # fmt: skip
    assert code == 0
    findings = {f["id"]: f for f in json.loads(out)["wiring"]["findings"]}
    link = findings["net.uplink.p2.link"]
    assert link["status"] == "fail"
    assert link["message"] == f"uplink NIC {NIC} is bound to ixgbe, not to vfio-pci"
    assert link["fix"] == f"bind it for DPDK: dpdk-devbind.py --bind=vfio-pci {NIC}"


def test_the_wiring_check_sees_binding_and_absence(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _nic(root, NIC, "vfio-pci", node=0)
    _nic(root, "0000:3b:00.1", None, node=-1)
    fs = HostFS(root)
    nic = read_pci_nic(fs, "0000:3b:00.1")
    assert nic is not None and (nic.driver, nic.numa_node, nic.dpdk_ready) == (None, None, False)
    assert dpdk_nics(fs, [NIC, "0000:3b:00.1", "0000:5e:00.0", "ens1"]) == [NIC]
    wiring = HostWiring(
        (Uplink("p2", NIC), Uplink("p3", "0000:3b:00.1"), Uplink("p4", "0000:5e:00.0"))
    )
    status = {f.id: (f.status, f.message) for f in cross_check(fs, wiring, (), {}).findings}
    assert status["net.uplink.p2.link"] == (
        Status.PASS,
        f"uplink NIC {NIC} is bound to vfio-pci: DPDK drives it",
    )
    assert status["net.uplink.p3.link"] == (
        Status.FAIL,
        "uplink NIC 0000:3b:00.1 is bound to no driver, not to vfio-pci",
    )
    assert status["net.uplink.p4.link"] == (
        Status.FAIL,
        "uplink NIC 0000:5e:00.0 of p4: no such PCI device",
    )


def test_the_switch_adds_it_as_a_dpdk_port_and_says_what_it_is() -> None:
    settings = load_settings()
    up = uplink_port(settings, "physred", NIC, (300,))
    assert (up.kind, up.devargs, up.port_name) == ("dpdk", NIC, "up-physred")
    args = bridge_args(Bridge("rt-physred", "physred", up, ("red",)))
    assert args[-11:] == [
        "set", "Interface", "up-physred", "type=dpdk", f"options:dpdk-devargs={NIC}",
        "--", "set", "Port", "up-physred", "vlan_mode=trunk", "trunks=300",
    ]  # fmt: skip
    said = uplink_kind(up, settings.uplink_latency)
    assert said.startswith(f"polled: DPDK drives NIC {NIC} (port up-physred); latency: ")
    assert "no kernel on the path" in said
    DataplaneDoc(backend="ovs-dpdk", vif_type="vhostuser", uplinks={"physred": said})  # fits
