"""The agent's view of the data plane: plug, unplug, and which guest ports exist.

:class:`Switch` is the data plane contract of ``rtkvm.dataplane.backend``
(describe, plug, unplug) plus ``ports()``, the guest NICs the switch has a
port for (what reconciliation compares with the API).
:class:`OvsSwitch` adds ``ports()`` to the OVS-DPDK backend by listing the
ports of the layout's bridges. This module must not decide what to plug:
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

    def ports(self) -> set[tuple[str, int]]:
        found: set[tuple[str, int]] = set()
        for bridge in self.backend.layout.bridges:
            listed = self.backend.ovs.vsctl("list-ports", bridge.name, wait=False)
            for line in listed.splitlines():
                parsed = parse_port_name(line.strip())
                if parsed is not None:
                    found.add(parsed)
        return found
