"""The OVS-DPDK data plane's ports and network mapping, with a scripted ovs-vsctl."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from rtkvm.agent.inventory import dataplane_state
from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.backend import OvsDpdkBackend
from rtkvm.dataplane.layout import compute_layout, resolve_cpus
from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.settings import load_settings
from rtkvm.dataplane.stack import load_layout
from rtkvm.errors import DataplaneError
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.net.model import HostWiring, UnmanagedNetwork, Uplink

GID = "9de1a7a4125a4ce69c8f58e3e79f7d39"


class ScriptedVsctl:
    """Answers ``list-ports BRIDGE`` from a table; records every command."""

    def __init__(self, ports: Mapping[str, list[str]]) -> None:
        self.ports = ports
        self.calls: list[list[str]] = []

    def run(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> str:
        self.calls.append(list(args))
        if "list-ports" in args:
            return "\n".join(self.ports[args[-1]]) + "\n"
        if args[-4:-2] == ["get", "Interface"] and args[-1] == "link_state":
            return self.ports["link_state"][0] + "\n"
        raise DataplaneError(f"unexpected command {args}")


def _switch(tmp_path: Path, runner: ScriptedVsctl, red: str = "ens1f1") -> OvsDpdkBackend:
    settings = load_settings()
    plan = PartitionPlan(
        housekeeping=CpuSet.parse("0-1"),
        rt_vcpu=CpuSet.parse("2-5"),
        dataplane=CpuSet.parse("6-7"),
    )
    node_of = {cpu: cpu // 4 for cpu in range(8)}
    cpus = resolve_cpus(plan, online=CpuSet(range(8)), node_of_cpu=node_of)
    layout = compute_layout(
        settings,
        cpus,
        node_of_cpu=node_of,
        nodes=[0, 1],
        networks=[UnmanagedNetwork("blue", "blue"), UnmanagedNetwork("red", "red", 200)],
        wiring=HostWiring((Uplink("blue", "ens1f0"), Uplink("red", red))),
        socket_dir="/run/rtkvm/vhost",
    )
    root = tmp_path / "root"
    root.mkdir()
    rundir = tmp_path / "run"
    rundir.mkdir()
    ovs = OvsDpdk(settings, rundir, HostFS(root), runner)
    return OvsDpdkBackend(ovs, layout)


def test_ports_lists_guest_ports_of_every_bridge(tmp_path: Path) -> None:
    runner = ScriptedVsctl(
        {
            "rt-blue": ["ens1f0", f"vhu-{GID}-0", "vhu-other_guest-1"],
            "rt-red": ["ens1f1", f"vhu-{GID}-1", "patch-to-somewhere"],
        }
    )
    switch = _switch(tmp_path, runner)
    assert switch.ports() == {(GID, 0), (GID, 1), ("other_guest", 1)}
    listed = [c[c.index("list-ports") + 1] for c in runner.calls]
    assert listed == ["rt-blue", "rt-red"]
    assert not any("del-port" in c for c in runner.calls)  # listing never removes


def test_describe_needs_a_running_vswitchd(tmp_path: Path) -> None:
    switch = _switch(tmp_path, ScriptedVsctl({}))
    with pytest.raises(DataplaneError, match="not running"):
        switch.describe()
    assert dataplane_state(switch) == "down"
    (tmp_path / "run" / "ovs-vswitchd.pid").write_text("4242\n")
    proc = tmp_path / "root" / "proc" / "4242"
    proc.mkdir(parents=True)
    (proc / "stat").write_text("4242 (ovs-vswitchd) S 1 4242 4242 0 -1\n")
    caps = switch.describe()
    assert (caps.backend, caps.networks) == ("ovs-dpdk", ("blue", "red"))
    assert dataplane_state(switch) == "ready"


@pytest.mark.parametrize(("link", "down"), [("up", ()), ("down", ("red",))])
def test_a_nic_uplinks_link_comes_from_the_switch(
    tmp_path: Path, link: str, down: tuple[str, ...]
) -> None:
    runner = ScriptedVsctl({"link_state": [link]})
    switch = _switch(tmp_path, runner, red="0000:3b:00.0")
    (tmp_path / "run" / "ovs-vswitchd.pid").write_text("4242\n")
    proc = tmp_path / "root" / "proc" / "4242"
    proc.mkdir(parents=True)
    (proc / "stat").write_text("4242 (ovs-vswitchd) S 1 4242 4242 0 -1\n")
    caps = switch.describe()
    assert caps.links_down == down
    asked = [c[-4:] for c in runner.calls]
    assert asked == [["get", "Interface", "up-red", "link_state"]]  # not the af_packet one
    assert dict(caps.uplinks)["red"].startswith("polled: DPDK drives NIC 0000:3b:00.0")


@pytest.mark.parametrize(
    ("name", "physnet", "vlan", "expected"),
    [
        ("blue", "blue", None, "blue"),  # the same name on the same wire
        ("tenant-a", "blue", None, "blue"),  # the cloud's name differs: the wire decides
        ("red2", "red", 200, "red"),
    ],
)
def test_network_for_maps_the_cloud_network_by_its_wire(
    tmp_path: Path, name: str, physnet: str, vlan: int | None, expected: str
) -> None:
    switch = _switch(tmp_path, ScriptedVsctl({}))
    assert switch.network_for(name, physnet, vlan) == expected


@pytest.mark.parametrize(("physnet", "vlan"), [("green", None), ("red", 300), ("red", None)])
def test_network_for_refuses_a_wire_the_switch_does_not_carry(
    tmp_path: Path, physnet: str, vlan: int | None
) -> None:
    switch = _switch(tmp_path, ScriptedVsctl({}))
    with pytest.raises(DataplaneError) as err:
        switch.network_for("x", physnet, vlan)
    message = str(err.value)
    assert f"physical network {physnet!r}" in message
    assert "blue (blue)" in message and "red (red VLAN 200)" in message
    assert "`rtkvm net up`" in message


class AnsweringVsctl(ScriptedVsctl):
    """Also accepts ``set Port ...`` (recorded)."""

    def run(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> str:
        if "set" in args and "Port" in args:
            self.calls.append(list(args))
            return ""
        return super().run(args, env=env, timeout=timeout)


def test_a_network_created_after_net_up_is_carried_on_its_physnets_bridge(tmp_path: Path) -> None:
    runner = AnsweringVsctl({})
    switch = _switch(tmp_path, runner)
    assert not switch.carry("red-again", "red", 200)  # same wire as red: nothing to do
    assert switch.carry("red-300", "red", 300)
    assert runner.calls[-1][-1] == "trunks=200,300"  # the uplink trunks the new VLAN
    assert switch.network_for("red-300", "red", 300) == "red-300"
    assert switch.layout.bridge_of_network("red-300").physnet == "red"
    assert load_layout(tmp_path / "run").vlans["red-300"] == 300  # kept for the next agent
    assert switch.carry("blue-10", "blue", 10)  # blue's uplink trunks nothing: it carries all
    assert not any("blue" in " ".join(c) for c in runner.calls if "set" in c)
    with pytest.raises(DataplaneError, match="no bridge"):
        switch.carry("green", "green", None)
    with pytest.raises(DataplaneError, match="another wire"):
        switch.carry("red-300", "red", 301)


class PortsWithTags(AnsweringVsctl):
    """Also answers ``get Port NAME tag`` from a table."""

    def __init__(self, ports: Mapping[str, list[str]], tags: Mapping[str, str]) -> None:
        super().__init__(ports)
        self.tags = tags

    def run(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> str:
        if "get" in args and args[-1] == "tag":
            self.calls.append(list(args))
            return self.tags[args[-2]] + "\n"
        return super().run(args, env=env, timeout=timeout)


def test_a_carried_network_is_dropped_only_when_no_guest_uses_it(tmp_path: Path) -> None:
    runner = PortsWithTags({"rt-red": ["ens1f1", f"vhu-{GID}-0"]}, {f"vhu-{GID}-0": "300"})
    switch = _switch(tmp_path, runner)
    assert not switch.drop("red")  # from the networks file: never dropped
    assert switch.carry("red-300", "red", 300)
    assert not switch.drop("red-300")  # a guest port is tagged 300
    runner.tags = {f"vhu-{GID}-0": "[]"}
    assert switch.drop("red-300")
    assert runner.calls[-1][-1] == "trunks=200"  # the uplink no longer trunks 300
    assert "red-300" not in switch.layout.vlans and switch.carried() == ()
    assert load_layout(tmp_path / "run").carried == ()


class AcceptsAll(ScriptedVsctl):
    """Answers every command but list-ports with nothing (it succeeded)."""

    def run(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> str:
        if "list-ports" in args:
            return super().run(args, env=env, timeout=timeout)
        self.calls.append(list(args))
        return ""


def test_plugging_a_nic_again_is_the_same_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guest started again (a reboot) plugs its NICs again: the port it has is fine; one
    on another network is refused."""
    from rtkvm.dataplane.layout import GuestNic

    runner = AcceptsAll({})
    switch = _switch(tmp_path, runner)
    monkeypatch.setattr(switch.ovs, "apply_pmd_sched", lambda **_: None)  # no vswitchd here
    first = switch.plug(GuestNic(GID, 0, "blue"))
    added = len(runner.calls)
    assert switch.plug(GuestNic(GID, 0, "blue")) == first
    assert len(runner.calls) == added  # nothing asked of OVS again
    with pytest.raises(DataplaneError, match="unplug it first"):
        switch.plug(GuestNic(GID, 0, "red"))
