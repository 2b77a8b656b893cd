"""With rtkvm's switch, the OpenStack agent's network traits name only wires Neutron can bind.

A wire whose physical network Neutron's OVS agent does not map to rtkvm's
switch gets no trait (Nova would place a server there whose port then fails to
bind), and the round says why; when Neutron cannot be asked, the last answer
holds and readiness still follows the doctor.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from rtkvm.cli.main import cli
from rtkvm.errors import OpenStackError
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.openstack.neutronwiring import NeutronWiring
from rtkvm.openstack.nodeagent import Round
from rtkvm.openstack.traits import names
from rtkvm.openstack.wiringcheck import OvsAgent
from rtkvm.tune.simkernel import SimulatedProcessControl

from .conftest import WIRING
from .test_openstack_ledger import WithoutNova

SWITCH = NeutronWiring(Path("/run/rtkvm/ovs"), (("blue", "rt-blue"), ("red", "rt-red")), "/vh")
BOTH = OvsAgent("c1", True, {"blue": "rt-blue", "red": "rt-red"}, "netdev", "/vh")


class Sources:
    def __init__(self, agent: OvsAgent | Exception | None) -> None:
        self.answer = agent
        self.asked: list[str] = []

    def switch(self) -> NeutronWiring | None:
        return SWITCH

    def agent(self, host: str) -> OvsAgent | None:
        self.asked.append(host)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _agent(
    fs: HostFS, plan: PartitionPlan, state: Path, sources: Sources, neutron_host: str | None = None
) -> WithoutNova:
    return WithoutNova(
        None, plan, fs=fs, control=SimulatedProcessControl(fs), quirks=set(), state_dir=state,
        wiring=WIRING, provider="c1", wiring_sources=sources, neutron_host=neutron_host,
    )  # fmt: skip


def _traits(agent: WithoutNova) -> tuple[Round, frozenset[str]]:
    done = Round()
    report = agent.inspect()
    assert report.physnets == ["blue"]  # red's interface is not on this host
    return done, agent.wanted_traits(done, report)


BLUE = names().network_trait("blue")


def test_a_wire_neutron_maps_to_the_switch_gets_its_trait(
    fs: HostFS, plan: PartitionPlan, tmp_path: Path
) -> None:
    sources = Sources(BOTH)
    done, traits = _traits(_agent(fs, plan, tmp_path, sources))
    assert BLUE in traits
    assert done.withheld == [] and done.wiring == [] and done.errors == []
    assert sources.asked == ["c1"]  # Neutron's agent on the compute node's host


def test_neutron_is_asked_under_its_own_name_for_the_host_when_given(
    fs: HostFS, plan: PartitionPlan, tmp_path: Path
) -> None:
    sources = Sources(OvsAgent("c1-short", True, BOTH.bridge_mappings, "netdev", "/vh"))
    done, traits = _traits(_agent(fs, plan, tmp_path, sources, neutron_host="c1-short"))
    assert sources.asked == ["c1-short"]
    assert BLUE in traits and done.wiring == []


def test_a_wire_neutron_does_not_map_gets_no_trait_and_the_round_says_why(
    fs: HostFS, plan: PartitionPlan, tmp_path: Path
) -> None:
    stale = OvsAgent("c1", True, {"red": "rt-red"}, "netdev", "/vh")
    agent = _agent(fs, plan, tmp_path, Sources(stale))
    done, traits = _traits(agent)
    assert BLUE not in traits
    assert done.withheld == ["blue"]
    assert any("bridge_mappings = blue:rt-blue,red:rt-red" in w for w in done.wiring)
    agent._save(done)
    saved = json.loads(agent.guests_file.read_text())
    assert saved["withheld_networks"] == ["blue"] and saved["wiring"] == done.wiring
    shown = CliRunner().invoke(cli, ["openstack", "guests", "--state-dir", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "no network trait for blue: Neutron cannot bind ports to them here" in shown.stderr
    assert "bridge_mappings = blue:rt-blue,red:rt-red" in shown.stderr


def test_a_dead_neutron_agent_withholds_every_network_trait(
    fs: HostFS, plan: PartitionPlan, tmp_path: Path
) -> None:
    dead = OvsAgent("c1", False, BOTH.bridge_mappings, "netdev", "/vh")
    done, traits = _traits(_agent(fs, plan, tmp_path, Sources(dead)))
    assert BLUE not in traits and done.withheld == ["blue"]


def test_neutron_out_of_reach_keeps_the_last_answer(
    fs: HostFS, plan: PartitionPlan, tmp_path: Path
) -> None:
    sources = Sources(OpenStackError("Neutron: connection refused"))
    agent = _agent(fs, plan, tmp_path, sources)
    done, traits = _traits(agent)  # never asked before: the wires stand
    assert BLUE in traits and done.errors == ["neutron: Neutron: connection refused"]

    sources.answer = OvsAgent("c1", True, {"red": "rt-red"}, "netdev", "/vh")
    assert BLUE not in _traits(agent)[1]
    sources.answer = OpenStackError("Neutron: connection refused")
    done, traits = _traits(agent)  # the last answer (blue not bindable) holds
    assert BLUE not in traits and done.withheld == ["blue"]
