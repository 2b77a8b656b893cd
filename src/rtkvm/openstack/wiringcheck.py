"""One source of wiring, checked: the host's wiring, rtkvm's switch and Neutron's OVS agent agree.

The node agent publishes a host's network traits from its wiring file; rtkvm's
switch was laid out from that file (one bridge per wired physical network);
Neutron's OVS agent on the host binds ports by its ``bridge_mappings`` and
plugs them as vhost-user ports of its ``datapath_type`` in its
``vhostuser_socket_dir``. When these disagree, Nova places a server by a trait
and Neutron cannot bind its port (``binding_failed``: the server goes to
ERROR), or os-vif plugs it into a switch no PMD serves. :func:`check_wiring`
says so as findings, each with its fix; :func:`ovs_agent` reads what the
agent reported to Neutron; :func:`bindable` is what the node agent publishes
network traits for: the wired physical networks Neutron can bind a port to
here. This module must not change the wiring, the switch or Neutron.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.settings import load_settings
from rtkvm.findings import Finding, Severity, Status
from rtkvm.hostfs import HostFS
from rtkvm.net.model import HostWiring
from rtkvm.openstack.neutronwiring import NeutronWiring, running_wiring
from rtkvm.openstack.session import RestAPI

OVS_AGENT_BINARY = "neutron-openvswitch-agent"
NETDEV = "netdev"
"""The datapath of a user-space (DPDK) switch; ``system`` is the kernel's."""

WHY = (
    "Nova places an RT server on a host by the network traits rtkvm publishes from the "
    "wiring; Neutron binds its port there only for a physical network in the OVS agent's "
    "bridge_mappings, and os-vif plugs it into the switch the agent names. A disagreement "
    "is a server in ERROR (binding_failed) or a port no PMD polls."
)
RESTART = "rtkvm openstack up --switch RUNDIR writes the agent's [ovs] section and restarts it"


@dataclass(frozen=True)
class OvsAgent:
    """What Neutron's OVS agent on a host last reported (GET /v2.0/agents)."""

    host: str
    alive: bool
    bridge_mappings: dict[str, str]
    datapath_type: str | None
    vhostuser_socket_dir: str | None


def ovs_agent(api: RestAPI, host: str) -> OvsAgent | None:
    """The OVS agent Neutron knows on ``host``, or None when there is none."""
    found = api.call(
        "network", "GET", f"/v2.0/agents?binary={OVS_AGENT_BINARY}&host={host}",
        what=f"list Neutron's OVS agents on {host}",
    )["agents"]  # fmt: skip
    agents = [a for a in found if a.get("host") == host and a.get("binary") == OVS_AGENT_BINARY]
    if not agents:
        return None
    agent: dict[str, Any] = agents[0]
    conf = agent.get("configurations") or {}
    mappings = conf.get("bridge_mappings") or {}
    return OvsAgent(
        host=host,
        alive=bool(agent.get("alive")),
        bridge_mappings={str(k): str(v) for k, v in mappings.items()},
        datapath_type=conf.get("datapath_type"),
        vhostuser_socket_dir=conf.get("vhostuser_socket_dir"),
    )


class WiringSources(Protocol):
    """Where the switch's and Neutron's views of a host's wiring are read."""

    def switch(self) -> NeutronWiring | None: ...

    def agent(self, host: str) -> OvsAgent | None: ...


class LiveWiringSources:
    """The switch running from ``rundir`` and Neutron's API."""

    def __init__(self, rundir: Path, fs: HostFS, api: RestAPI) -> None:
        self.ovs = OvsDpdk(load_settings(), rundir, fs)  # settings read once, not each round
        self.api = api

    def switch(self) -> NeutronWiring | None:
        return running_wiring(self.ovs)

    def agent(self, host: str) -> OvsAgent | None:
        return ovs_agent(self.api, host)


def bindable(
    physnets: Iterable[str], switch: NeutronWiring | None, agent: OvsAgent | None
) -> list[str]:
    """Of ``physnets`` (wired and live), those Neutron binds a port to on this host: the
    switch has the bridge, and the live agent maps it there on rtkvm's datapath."""
    if switch is None or agent is None or not agent.alive:
        return []
    if agent.datapath_type != NETDEV or agent.vhostuser_socket_dir != switch.socket_dir:
        return []
    bridges = dict(switch.bridges)
    return sorted(
        p for p in set(physnets) if p in bridges and agent.bridge_mappings.get(p) == bridges[p]
    )


def check_wiring(
    wiring: HostWiring, switch: NeutronWiring | None, agent: OvsAgent | None, host: str
) -> list[Finding]:
    """Findings: the wiring against the switch, the switch against Neutron's agent."""
    wired = sorted({u.physnet for u in wiring.uplinks})
    findings = [_switch_finding(wired, switch)]
    if switch is None:
        return findings
    findings.append(_agent_finding(agent, host))
    if agent is None:
        return findings
    findings.append(_mappings_finding(switch, agent))
    findings.append(_datapath_finding(switch, agent))
    return findings


def _switch_finding(wired: list[str], switch: NeutronWiring | None) -> Finding:
    if switch is None:
        return Finding(
            "openstack.wiring.switch", Severity.ERROR, Status.FAIL,
            "rtkvm's switch is not running here: Neutron has no RT switch to bind ports to",
            observed=None, expected=wired, why=WHY,
            fix="rtkvm net up --wiring WIRING --networks NETWORKS --rundir RUNDIR",
        )  # fmt: skip
    have = sorted(switch.physnets)
    missing = [p for p in wired if p not in have]
    extra = [p for p in have if p not in wired]
    if not missing and not extra:
        return Finding(
            "openstack.wiring.switch", Severity.ERROR, Status.PASS,
            f"rtkvm's switch has a bridge for each wired physical network ({', '.join(have)})",
            observed=have, expected=wired,
        )  # fmt: skip
    words = []
    if missing:
        words.append(f"no bridge for {', '.join(missing)} (wired)")
    if extra:
        words.append(f"a bridge for {', '.join(extra)} (not wired)")
    return Finding(
        "openstack.wiring.switch", Severity.ERROR, Status.FAIL,
        f"rtkvm's switch was laid out from another wiring: {'; '.join(words)}",
        observed=have, expected=wired, why=WHY,
        fix="lay the switch out again from the wiring file: rtkvm net down --rundir RUNDIR; "
        "rtkvm net up --wiring WIRING --networks NETWORKS --rundir RUNDIR (with no guest "
        "on it), then restart Neutron's OVS agent",
    )  # fmt: skip


def _agent_finding(agent: OvsAgent | None, host: str) -> Finding:
    if agent is None:
        return Finding(
            "openstack.wiring.neutron_agent", Severity.ERROR, Status.FAIL,
            f"Neutron knows no OVS agent on {host}: it binds no port here",
            observed=None, expected=OVS_AGENT_BINARY, why=WHY,
            fix=f"start {OVS_AGENT_BINARY} on {host} pointed at rtkvm's switch ({RESTART})",
        )  # fmt: skip
    if not agent.alive:
        return Finding(
            "openstack.wiring.neutron_agent", Severity.ERROR, Status.FAIL,
            f"Neutron's OVS agent on {host} is not alive (no recent report): it binds no port",
            observed="dead", expected="alive", why=WHY,
            fix=f"restart {OVS_AGENT_BINARY} on {host} and read its log",
        )  # fmt: skip
    return Finding(
        "openstack.wiring.neutron_agent", Severity.ERROR, Status.PASS,
        f"Neutron's OVS agent on {host} is alive", observed="alive", expected="alive",
    )  # fmt: skip


def _mappings_finding(switch: NeutronWiring, agent: OvsAgent) -> Finding:
    want = dict(switch.bridges)
    have = agent.bridge_mappings
    if have == want:
        return Finding(
            "openstack.wiring.bridge_mappings", Severity.ERROR, Status.PASS,
            f"Neutron's OVS agent maps the switch's bridges ({switch.bridge_mappings})",
            observed=have, expected=want,
        )  # fmt: skip
    wrong = sorted(p for p in set(want) | set(have) if want.get(p) != have.get(p))
    return Finding(
        "openstack.wiring.bridge_mappings", Severity.ERROR, Status.FAIL,
        f"Neutron's OVS agent maps {', '.join(wrong)} otherwise than rtkvm's switch has them",
        observed=have, expected=want, why=WHY,
        fix=f"set bridge_mappings = {switch.bridge_mappings} in the agent's [ovs] section and "
        f"restart it ({RESTART})",
    )  # fmt: skip


def _datapath_finding(switch: NeutronWiring, agent: OvsAgent) -> Finding:
    have = {
        "datapath_type": agent.datapath_type,
        "vhostuser_socket_dir": agent.vhostuser_socket_dir,
    }
    want = {"datapath_type": NETDEV, "vhostuser_socket_dir": switch.socket_dir}
    if have == want:
        return Finding(
            "openstack.wiring.datapath", Severity.ERROR, Status.PASS,
            f"Neutron's OVS agent plugs vhost-user ports into rtkvm's switch ({NETDEV}, "
            f"sockets in {switch.socket_dir})",
            observed=have, expected=want,
        )  # fmt: skip
    return Finding(
        "openstack.wiring.datapath", Severity.ERROR, Status.FAIL,
        "Neutron's OVS agent would plug ports elsewhere than rtkvm's switch serves them",
        observed=have, expected=want, why=WHY,
        fix=f"set datapath_type = {NETDEV} and vhostuser_socket_dir = {switch.socket_dir} in "
        f"the agent's [ovs] section and restart it ({RESTART})",
    )  # fmt: skip
