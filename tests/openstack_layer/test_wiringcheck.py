"""One source of wiring: the host's wiring, rtkvm's switch and Neutron's OVS agent, compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rtkvm.findings import Report, Status
from rtkvm.net.model import HostWiring, Uplink
from rtkvm.openstack.neutronwiring import NeutronWiring
from rtkvm.openstack.wiringcheck import OvsAgent, check_wiring, ovs_agent

WIRING = HostWiring((Uplink("physblue", "eth1"), Uplink("physred", "eth2")))
SWITCH = NeutronWiring(
    Path("/run/rtkvm/ovs"),
    (("physblue", "rt-physblue"), ("physred", "rt-physred")),
    "/run/rtkvm/vhost",
)
AGENT = OvsAgent(
    "node1", True, {"physblue": "rt-physblue", "physred": "rt-physred"}, "netdev",
    "/run/rtkvm/vhost",
)  # fmt: skip


def _statuses(findings: list[Any]) -> dict[str, str]:
    return {f.id.removeprefix("openstack.wiring."): f.status.value for f in findings}


def test_wiring_switch_and_agent_that_agree_pass() -> None:
    findings = check_wiring(WIRING, SWITCH, AGENT, "node1")
    assert _statuses(findings) == {
        "switch": "pass", "neutron_agent": "pass", "bridge_mappings": "pass", "datapath": "pass",
    }  # fmt: skip
    assert Report("w", tuple(findings)).exit_code() == 0


def test_an_agent_started_with_an_old_mapping_fails_with_the_mapping_to_set() -> None:
    stale = OvsAgent("node1", True, {"physblue": "br-eth1"}, "netdev", "/run/rtkvm/vhost")
    (mappings,) = [f for f in check_wiring(WIRING, SWITCH, stale, "node1")
                   if f.id == "openstack.wiring.bridge_mappings"]  # fmt: skip
    assert mappings.status is Status.FAIL
    assert "physblue, physred" in mappings.message
    assert "bridge_mappings = physblue:rt-physblue,physred:rt-physred" in mappings.fix
    assert Report("w", (mappings,)).exit_code() == 1


def test_an_agent_on_the_kernel_datapath_would_plug_ports_no_pmd_polls() -> None:
    kernel = OvsAgent("node1", True, AGENT.bridge_mappings, "system", None)
    (datapath,) = [f for f in check_wiring(WIRING, SWITCH, kernel, "node1")
                   if f.id == "openstack.wiring.datapath"]  # fmt: skip
    assert datapath.status is Status.FAIL
    assert "datapath_type = netdev" in datapath.fix and "/run/rtkvm/vhost" in datapath.fix


def test_a_wire_the_switch_has_no_bridge_for_is_a_switch_laid_out_from_another_wiring() -> None:
    more = HostWiring((*WIRING.uplinks, Uplink("physgreen", "eth3")))
    (switch, *_) = check_wiring(more, SWITCH, AGENT, "node1")
    assert switch.status is Status.FAIL
    assert "no bridge for physgreen (wired)" in switch.message
    assert "rtkvm net up --wiring" in switch.fix


def test_no_switch_or_no_agent_says_what_to_start() -> None:
    assert _statuses(check_wiring(WIRING, None, None, "node1")) == {"switch": "fail"}
    missing = check_wiring(WIRING, SWITCH, None, "node1")
    assert _statuses(missing) == {"switch": "pass", "neutron_agent": "fail"}
    assert "neutron-openvswitch-agent" in missing[1].fix
    dead = OvsAgent("node1", False, AGENT.bridge_mappings, "netdev", "/run/rtkvm/vhost")
    assert _statuses(check_wiring(WIRING, SWITCH, dead, "node1"))["neutron_agent"] == "fail"


class AgentsAPI:
    """Neutron's GET /v2.0/agents, answered as neutron-openvswitch-agent reports itself."""

    def __init__(self, agents: list[dict[str, Any]]) -> None:
        self.agents = agents
        self.paths: list[str] = []

    def call(self, service: str, method: str, path: str, **_: Any) -> Any:
        assert (service, method) == ("network", "GET")
        self.paths.append(path)
        return {"agents": self.agents}


def test_the_agent_is_read_as_neutron_reports_it() -> None:
    report = {
        "binary": "neutron-openvswitch-agent", "host": "node1", "alive": True,
        "agent_type": "Open vSwitch agent",
        "configurations": {
            "bridge_mappings": {"physblue": "rt-physblue", "physred": "rt-physred"},
            "datapath_type": "netdev", "vhostuser_socket_dir": "/run/rtkvm/vhost",
            "tunnel_types": [], "ovs_hybrid_plug": False,
        },
    }  # fmt: skip
    api = AgentsAPI([report, {**report, "host": "node2"}])
    assert ovs_agent(api, "node1") == AGENT  # type: ignore[arg-type]
    assert api.paths == ["/v2.0/agents?binary=neutron-openvswitch-agent&host=node1"]
    assert ovs_agent(AgentsAPI([]), "node1") is None  # type: ignore[arg-type]


def test_check_without_a_running_switch_fails_before_asking_neutron(tmp_path: Path) -> None:
    """A layout left by a stopped switch is no switch; Neutron is not asked (no clouds.yaml
    is read: the cloud named here does not exist)."""
    from click.testing import CliRunner

    from rtkvm.cli.main import cli

    wiring = tmp_path / "wiring.toml"
    wiring.write_text('[[uplink]]\nphysnet = "physblue"\ninterface = "eth1"\n')
    rundir = tmp_path / "switch"
    rundir.mkdir()
    done = CliRunner().invoke(
        cli,
        ["openstack", "network", "check", "--wiring", str(wiring), "--switch-rundir",
         str(rundir), "--os-cloud", "no-such-cloud", "-f", "json"],
    )  # fmt: skip
    assert done.exit_code == 1, done.output
    report = json.loads(done.output)
    assert report["verdict"] == "disagree"
    assert [f["id"] for f in report["findings"]] == ["openstack.wiring.switch"]
    assert "not running" in report["findings"][0]["message"]
