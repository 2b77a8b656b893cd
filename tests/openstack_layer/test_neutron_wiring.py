"""Neutron's agent and os-vif are configured from the layout of rtkvm's switch (one wiring)."""

from __future__ import annotations

import configparser
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest
from tests.openstack_layer.aio_values import aio_values

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.layout import DataplaneCpus, GuestNic, compute_layout
from rtkvm.dataplane.settings import load_settings
from rtkvm.dataplane.stack import save_layout
from rtkvm.errors import DataplaneError
from rtkvm.net.model import HostWiring, UnmanagedNetwork, Uplink
from rtkvm.openstack.aio.configs import AGENT_FILE, FILES, render_all
from rtkvm.openstack.aio.layout import StackLayout
from rtkvm.openstack.aio.services import SERVICES, argv
from rtkvm.openstack.neutronwiring import neutron_wiring


def _switch(rundir: Path) -> None:
    networks = [
        UnmanagedNetwork("blue", "physblue", 10),
        UnmanagedNetwork("red", "physblue", 20),
        UnmanagedNetwork("green", "physgreen"),
    ]
    wiring = HostWiring((Uplink("physblue", "eth1"), Uplink("physgreen", "eth2")))
    cpus = DataplaneCpus(pmd=CpuSet.parse("2"), lcore=CpuSet.parse("0"), process=CpuSet.parse("0"))
    layout = compute_layout(
        load_settings(), cpus, node_of_cpu={0: 0, 2: 0}, nodes=[0], networks=networks,
        wiring=wiring,
        socket_dir=PurePosixPath("/run/rtkvm/vhost"), nics=(GuestNic("g1", 0, "blue"),),
    )  # fmt: skip
    save_layout(rundir, layout)


def _ini(text: str) -> configparser.ConfigParser:
    ini = configparser.ConfigParser(interpolation=None, strict=False)
    ini.read_string(text)
    return ini


def test_bridge_mappings_ovsdb_and_sockets_come_from_the_switch_s_layout(tmp_path: Path) -> None:
    _switch(tmp_path / "ovs")
    wiring = neutron_wiring(tmp_path / "ovs")
    assert wiring.bridges == (("physblue", "rt-physblue"), ("physgreen", "rt-physgreen"))
    assert wiring.bridge_mappings == "physblue:rt-physblue,physgreen:rt-physgreen"
    assert wiring.ovsdb == f"unix:{tmp_path / 'ovs' / 'db.sock'}"
    files = render_all(replace(aio_values(tmp_path / "stack"), wiring=wiring))
    assert set(files) == set(FILES) | {AGENT_FILE}
    agent = _ini(files[AGENT_FILE])
    assert agent["ovs"]["bridge_mappings"] == wiring.bridge_mappings
    assert agent["ovs"]["datapath_type"] == "netdev"
    assert agent["ovs"]["vhostuser_socket_dir"] == "/run/rtkvm/vhost"
    assert agent["ovs"]["ovsdb_connection"] == wiring.ovsdb
    assert agent["ovs"]["of_listen_address"] == "127.0.0.1"
    assert agent["securitygroup"]["firewall_driver"] == "noop"
    for section in ("privsep", "privsep_ovs_vsctl", "privsep_link"):  # no sudo here
        assert agent[section]["helper_command"].startswith("/venv/bin/privsep-helper ")
    ml2 = _ini(files["neutron/plugins/ml2/ml2_conf.ini"])
    assert ml2["ml2_type_flat"]["flat_networks"] == "physblue,physgreen"
    assert ml2["ml2_type_vlan"]["network_vlan_ranges"] == "physblue,physgreen"
    nova = _ini(files["nova/nova.conf"])
    assert nova["os_vif_ovs"]["ovsdb_connection"] == wiring.ovsdb
    neutron = _ini(files["neutron/neutron.conf"])
    assert neutron["DEFAULT"]["service_plugins"] == "segments"  # ip_allocation: none
    assert neutron["DEFAULT"]["notify_nova_on_port_status_changes"] == "true"


def test_without_a_switch_no_agent_is_configured_and_neutron_takes_no_physical_network(
    tmp_path: Path,
) -> None:
    files = render_all(aio_values(tmp_path))
    assert AGENT_FILE not in files
    ml2 = _ini(files["neutron/plugins/ml2/ml2_conf.ini"])
    assert ml2["ml2_type_flat"]["flat_networks"] == ""
    assert ml2["ml2_type_vlan"]["network_vlan_ranges"] == ""


def test_no_switch_in_the_directory_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(DataplaneError, match="rtkvm net up"):
        neutron_wiring(tmp_path)


def test_neutron_s_daemons_run_with_their_config_files_and_only_with_a_switch(
    tmp_path: Path,
) -> None:
    layout = StackLayout(tmp_path)
    by_name = {s.name: s for s in SERVICES}
    agent = argv(by_name["neutron-openvswitch-agent"], layout, Path("/venv"), 0, False)
    assert agent == [
        "/venv/bin/neutron-openvswitch-agent",
        "--config-file", str(tmp_path / "etc/neutron/neutron.conf"),
        "--config-file", str(tmp_path / "etc" / AGENT_FILE),
    ]  # fmt: skip
    rpc = argv(by_name["neutron-rpc-server"], layout, Path("/venv"), 0, False)
    assert rpc[-1] == str(tmp_path / "etc/neutron/plugins/ml2/ml2_conf.ini")
    assert {s.name for s in SERVICES if s.needs_switch} == {
        "neutron-rpc-server",
        "neutron-openvswitch-agent",
    }
    order = [s.name for s in SERVICES]
    assert order.index("neutron-openvswitch-agent") < order.index("nova-compute")
    compute = argv(by_name["nova-compute"], layout, Path("/venv"), 0, True, no_msix=True)
    assert compute[2:4] == ["1", "1"]  # drop <locked/>, vectors=0 on vhost-user NICs
