"""The data plane contract and its OVS-DPDK backend.

Callers (the guest builder, the node agent, the CLI) use only ``DataPlane``:
``describe`` reports what this host's switch offers (it goes into the host
report, and a switch that cannot describe itself is down), ``plug`` attaches
a guest NIC to a network and returns the vhost-user socket the guest's QEMU
must serve, ``unplug`` detaches it, ``ports`` lists the guest ports that
exist (what reconciliation compares with the control plane's view) and
``network_for`` maps a control plane's network (name, physical network,
VLAN) to the switch's network on the same wire. Another backend (a kernel
OVS bridge, VPP) implements the same methods. This module must not compute
masks or names (layout.py, names.py) nor manage processes (ovs.py), and it
never removes a port on its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

from rtkvm.dataplane.layout import (
    Bridge,
    GuestNic,
    SwitchLayout,
    UplinkPort,
    VhostPort,
    port_for,
)
from rtkvm.dataplane.names import parse_port_name
from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.quirks import rt_throttling
from rtkvm.dataplane.rxq import check_uplinks
from rtkvm.dataplane.sched import Sweep
from rtkvm.dataplane.stack import save_layout
from rtkvm.dataplane.threads import ThreadInfo, check_reset_on_fork, check_threads, split_pmds
from rtkvm.errors import DataplaneError
from rtkvm.findings import Report


@dataclass(frozen=True)
class Capabilities:
    backend: str
    vif_type: str
    """What a guest NIC is: 'vhostuser' (QEMU is the server, mode='server' in libvirt)."""
    socket_dir: PurePosixPath
    networks: tuple[str, ...]
    pmd_cpus: str
    pmd_sched: str
    shared_with_rt_vcpus: bool
    physnets: tuple[str, ...] = ()
    """Physical networks the switch has a bridge (and an uplink) for: it can carry any
    network on them."""
    uplinks: tuple[tuple[str, str], ...] = ()
    """(physnet, what its uplink is): polled by a PMD, or a kernel port (not polled)."""
    links_down: tuple[str, ...] = ()
    """Physical networks whose NIC (one DPDK drives: no kernel interface shows its
    carrier) the switch sees with its link down."""


def uplink_kind(up: UplinkPort, latency: Mapping[str, str] | None = None) -> str:
    """What an uplink is, for the host's description and the doctor's readers; with
    ``latency`` (DataplaneSettings.uplink_latency), what that means for latency."""
    if up.kind == "dpdk":
        said = f"polled: DPDK drives NIC {up.interface} (port {up.port_name})"
    elif up.kind == "af_packet":
        said = f"polled: DPDK af_packet on {up.interface} (port {up.port_name})"
    else:
        said = f"kernel port {up.interface}: not polled (ovs-vswitchd's main thread)"
    meaning = (latency or {}).get(up.kind)
    return f"{said}; latency: {meaning}" if meaning else said


def _physnet(bridge: Bridge) -> str:
    return bridge.physnet


@dataclass(frozen=True)
class PluggedNic:
    """What the guest layer needs for its <interface type='vhostuser'>."""

    port: str
    socket: PurePosixPath
    mode: str = "server"


class DataPlane(Protocol):
    def describe(self) -> Capabilities:
        """What the switch offers; DataplaneError when it does not run."""
        ...

    def plug(self, nic: GuestNic) -> PluggedNic:
        """Attach a guest NIC (plugging one that exists again is fine)."""
        ...

    def unplug(self, nic: GuestNic) -> None: ...

    def ports(self) -> set[tuple[str, int]]:
        """(guest id, NIC index) of every guest port on the switch."""
        ...

    def network_for(self, name: str, physnet: str, vlan: int | None) -> str:
        """The switch's network carrying (physnet, vlan): the control plane's network
        ``name`` if the switch has it under that name, else the one with the same wire."""
        ...

    def drop(self, name: str) -> bool:
        """Take away a network ``carry`` laid out (never one of the networks file) when no
        guest port is on it; True when that changed the switch."""
        ...

    def carried(self) -> tuple[str, ...]:
        """The networks ``carry`` laid out."""
        ...

    def carry(self, name: str, physnet: str, vlan: int | None) -> bool:
        """Make the switch carry the control plane's network (on the bridge of its physical
        network, the uplink trunking its VLAN); True when that changed the switch.
        DataplaneError when the switch has no bridge for the physical network."""
        ...


class OvsDpdkBackend:
    """DataPlane on a running rtkvm-owned OVS-DPDK switch."""

    def __init__(self, ovs: OvsDpdk, layout: SwitchLayout) -> None:
        self.ovs = ovs
        self.layout = layout
        self._plugged: dict[tuple[str, int], VhostPort] = {}

    def _links_down(self) -> tuple[str, ...]:
        """The NIC uplinks OVS reports link_state down (an unreadable one counts as down:
        a wire nobody can vouch for carries no guest)."""
        down = []
        for b in sorted(self.layout.bridges, key=_physnet):
            if b.uplink.kind != "dpdk":
                continue
            try:
                state = self.ovs.vsctl("get", "Interface", b.uplink.port_name, "link_state")
            except DataplaneError:
                state = "unknown"
            if state.strip().strip('"') != "up":
                down.append(b.physnet)
        return tuple(down)

    def describe(self) -> Capabilities:
        if self.ovs.pid("ovs-vswitchd") is None:
            raise DataplaneError(
                f"ovs-vswitchd of {self.ovs.rundir} is not running: `rtkvm net up`"
            )
        s = self.ovs.settings
        return Capabilities(
            backend="ovs-dpdk",
            vif_type="vhostuser",
            socket_dir=self.layout.socket_dir,
            networks=tuple(n for b in self.layout.bridges for n in b.networks),
            pmd_cpus=self.layout.cpus.pmd.format(),
            pmd_sched=f"{s.pmd_policy}/{s.pmd_priority}",
            shared_with_rt_vcpus=self.layout.cpus.shared_with_rt,
            physnets=tuple(sorted({b.physnet for b in self.layout.bridges})),
            links_down=self._links_down(),
            uplinks=tuple(
                (b.physnet, uplink_kind(b.uplink, s.uplink_latency))
                for b in sorted(self.layout.bridges, key=_physnet)
            ),
        )

    def plug(self, nic: GuestNic) -> PluggedNic:
        key = (nic.guest, nic.nic)
        port = port_for(self.layout, nic)
        held = self._plugged.get(key)
        if held is not None:  # plugged by this process (a guest started again): the same port
            if held != port:
                raise DataplaneError(
                    f"guest {nic.guest!r} NIC {nic.nic} is plugged into {held.port}, not "
                    f"{port.port} of network {nic.network}: unplug it first"
                )
            return PluggedNic(held.port, held.socket)
        self.ovs.plug(port)
        self._plugged[key] = port
        # New ports never recreate PMD threads, but a reconfiguration may: re-apply.
        self.ovs.apply_pmd_sched(housekeeping=self.layout.cpus.process)
        return PluggedNic(port.port, port.socket)

    def unplug(self, nic: GuestNic) -> None:
        port = self._plugged.pop((nic.guest, nic.nic), None) or port_for(self.layout, nic)
        self.ovs.unplug(port)

    def network_for(self, name: str, physnet: str, vlan: int | None) -> str:
        layout = self.layout
        same_wire = [
            net
            for net, tag in layout.vlans.items()
            if tag == vlan and layout.bridge_of_network(net).physnet == physnet
        ]
        if name in same_wire:
            return name
        if same_wire:
            return sorted(same_wire)[0]
        where = f"physical network {physnet!r}" + (f" VLAN {vlan}" if vlan else " untagged")
        laid = ", ".join(
            f"{net} ({layout.bridge_of_network(net).physnet}" + (f" VLAN {tag})" if tag else ")")
            for net, tag in sorted(layout.vlans.items())
        )
        raise DataplaneError(
            f"network {name!r} is on {where}, which this host's switch does not carry "
            f"(it carries: {laid or 'nothing'}): add it to the networks file given to "
            "`rtkvm net up` and restart the switch"
        )

    def carry(self, name: str, physnet: str, vlan: int | None) -> bool:
        layout = self.layout
        if any(
            tag == vlan and layout.bridge_of_network(net).physnet == physnet
            for net, tag in layout.vlans.items()
        ):
            return False  # a network on the same wire is laid out already
        bridge = next((b for b in layout.bridges if b.physnet == physnet), None)
        if bridge is None:
            have = ", ".join(sorted({b.physnet for b in layout.bridges})) or "none"
            raise DataplaneError(
                f"network {name!r} is on physical network {physnet!r}, for which this host's "
                f"switch has no bridge (it has: {have}): add a network on {physnet} to the "
                "networks file given to `rtkvm net up` and restart the switch"
            )
        if name in layout.vlans:
            raise DataplaneError(
                f"the switch already has a network {name!r} on another wire: rename one"
            )
        trunks = bridge.uplink.trunks
        if vlan is not None and trunks and vlan not in trunks:
            trunks = tuple(sorted((*trunks, vlan)))
            self.ovs.vsctl(
                "set", "Port", bridge.uplink.port_name, f"trunks={','.join(map(str, trunks))}"
            )
        grown = dataclasses.replace(
            bridge,
            uplink=dataclasses.replace(bridge.uplink, trunks=trunks),
            networks=(*bridge.networks, name),
        )
        self.layout = dataclasses.replace(
            layout,
            bridges=tuple(grown if b is bridge else b for b in layout.bridges),
            vlans={**layout.vlans, name: vlan},
            carried=(*layout.carried, name),
        )
        save_layout(self.ovs.rundir, self.layout)
        return True

    def carried(self) -> tuple[str, ...]:
        return self.layout.carried

    def drop(self, name: str) -> bool:
        layout = self.layout
        if name not in layout.carried:
            return False
        bridge = layout.bridge_of_network(name)
        vlan = layout.vlans[name]
        wanted = "[]" if vlan is None else str(vlan)  # how ovs-vsctl shows a port's tag
        for port in self.ovs.vsctl("list-ports", bridge.name, wait=False).split():
            if parse_port_name(port) is None:
                continue
            if self.ovs.vsctl("get", "Port", port, "tag", wait=False).strip() == wanted:
                return False  # a guest still uses it: dropped later
        rest = {n: v for n, v in layout.vlans.items() if n != name}
        trunks = bridge.uplink.trunks
        if (
            vlan is not None
            and vlan in trunks
            and vlan not in {v for n, v in rest.items() if n in bridge.networks}
        ):
            trunks = tuple(t for t in trunks if t != vlan)
            self.ovs.vsctl(
                "set", "Port", bridge.uplink.port_name, f"trunks={','.join(map(str, trunks))}"
            )
        shrunk = dataclasses.replace(
            bridge,
            uplink=dataclasses.replace(bridge.uplink, trunks=trunks),
            networks=tuple(n for n in bridge.networks if n != name),
        )
        self.layout = dataclasses.replace(
            layout,
            bridges=tuple(shrunk if b is bridge else b for b in layout.bridges),
            vlans=rest,
            carried=tuple(n for n in layout.carried if n != name),
        )
        save_layout(self.ovs.rundir, self.layout)
        return True

    def ports(self) -> set[tuple[str, int]]:
        found: set[tuple[str, int]] = set()
        for bridge in self.layout.bridges:
            listed = self.ovs.vsctl("list-ports", bridge.name, wait=False)
            for line in listed.splitlines():
                parsed = parse_port_name(line.strip())
                if parsed is not None:
                    found.add(parsed)
        return found

    def unplug_guest(self, guest: str) -> list[str]:
        """Remove every port of ``guest`` on the switch's bridges; returns the ports removed."""
        removed = []
        for bridge in self.layout.bridges:
            for port in self.ovs.vsctl("list-ports", bridge.name).split():
                parsed = parse_port_name(port)
                if parsed is not None and parsed[0] == guest:
                    self.ovs.vsctl("--if-exists", "del-port", bridge.name, port)
                    removed.append(port)
        for key in [k for k in self._plugged if k[0] == guest]:
            del self._plugged[key]
        return removed

    def sweep(self) -> Sweep:
        """PMDs at their priority (passing nothing on), other threads on housekeeping."""
        return self.ovs.apply_pmd_sched(housekeeping=self.layout.cpus.process, settle=0)

    def _policies(self, pmds: tuple[ThreadInfo, ...]) -> dict[int, int]:
        found = {}
        for t in pmds:
            with contextlib.suppress(ProcessLookupError):
                found[t.tid] = self.ovs.sched.get(t.tid)[0]
        return found

    def verify(self) -> Report:
        """PMD threads on the dataplane CPUs with the chosen priority, the rest on housekeeping;
        each bridge's uplink polled by one of those PMDs.

        With a real-time PMD policy, RT throttling is checked too: it is what keeps a
        FIFO poll loop from starving its CPU's normal tasks completely.
        """
        s = self.ovs.settings
        threads = self.ovs.threads()
        report = check_threads(
            threads,
            pmd_cpus=self.layout.cpus.pmd,
            housekeeping=self.layout.cpus.process,
            policy=s.pmd_policy,
            priority=s.pmd_priority,
        )
        rxq = self.ovs.appctl("ovs-vswitchd", "dpif-netdev/pmd-rxq-show")
        extra = tuple(
            check_uplinks(rxq, self.layout.bridges, self.layout.cpus.pmd, s.uplink_latency)
        )
        if s.pmd_policy != "other":
            extra += (rt_throttling(self.ovs.fs),)
            pmds = split_pmds(threads)[0]
            extra += (check_reset_on_fork(pmds, self._policies(pmds)),)
        return dataclasses.replace(report, findings=report.findings + extra)
