"""The agent's view of the data plane: plug, unplug, and which guest ports exist.

:class:`Switch` is the data plane contract of ``rtkvm.dataplane.backend``
(describe, plug, unplug) plus ``ports()``, the guest NICs the switch has a
port for (what reconciliation compares with the API).
:class:`OvsSwitch` adds ``ports()`` to the OVS-DPDK backend by listing the
ports of the layout's bridges, and ``network_for()``, which maps the cloud's
network (name, physical network, VLAN) to the switch's network on the same
wire (the switch's names come from `rtkvm net up`'s networks file and may
differ from the API's). This module must not decide what to plug:
the executor and reconciliation do; it never removes a port on its own.
"""

from __future__ import annotations

from typing import Protocol

from rtkvm.dataplane.backend import Capabilities, OvsDpdkBackend, PluggedNic
from rtkvm.dataplane.layout import GuestNic
from rtkvm.dataplane.names import parse_port_name
from rtkvm.errors import DataplaneError


class Switch(Protocol):
    def describe(self) -> Capabilities: ...

    def plug(self, nic: GuestNic) -> PluggedNic: ...

    def unplug(self, nic: GuestNic) -> None: ...

    def ports(self) -> set[tuple[str, int]]:
        """(guest id, NIC index) of every guest port on the switch."""
        ...

    def network_for(self, name: str, physnet: str, vlan: int | None) -> str:
        """The switch's network carrying (physnet, vlan): the cloud's network ``name``
        if the switch has it under that name, else the one with the same wire."""
        ...


class OvsSwitch:
    """Switch over a running rtkvm OVS-DPDK (its backend and layout)."""

    def __init__(self, backend: OvsDpdkBackend) -> None:
        self.backend = backend

    def describe(self) -> Capabilities:
        """The backend's capabilities; DataplaneError when ovs-vswitchd does not run."""
        if self.backend.ovs.pid("ovs-vswitchd") is None:
            raise DataplaneError(
                f"ovs-vswitchd of {self.backend.ovs.rundir} is not running: `rtkvm net up`"
            )
        return self.backend.describe()

    def plug(self, nic: GuestNic) -> PluggedNic:
        return self.backend.plug(nic)  # --may-exist: re-plugging after a restart is fine

    def unplug(self, nic: GuestNic) -> None:
        self.backend.unplug(nic)

    def network_for(self, name: str, physnet: str, vlan: int | None) -> str:
        layout = self.backend.layout
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

    def ports(self) -> set[tuple[str, int]]:
        found: set[tuple[str, int]] = set()
        for bridge in self.backend.layout.bridges:
            listed = self.backend.ovs.vsctl("list-ports", bridge.name, wait=False)
            for line in listed.splitlines():
                parsed = parse_port_name(line.strip())
                if parsed is not None:
                    found.add(parsed)
        return found
