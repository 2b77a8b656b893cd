"""Neutron's view of rtkvm's switch: bridge mappings, physical networks, ovsdb and sockets.

Neutron's OVS agent and Nova's os-vif plug guests into the switch rtkvm
started (``rtkvm net up``), never into a switch of their own. Everything they
are told comes from the layout rtkvm saved in the switch's run directory,
which rtkvm computed from the host's wiring file, the file the node agent
also publishes the host's network traits from: one source of wiring.
:func:`neutron_wiring` reads that layout. This module must not start
anything or write a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtkvm.dataplane.ovs import OvsDpdk, db_socket
from rtkvm.dataplane.stack import load_layout
from rtkvm.errors import DataplaneError


@dataclass(frozen=True)
class NeutronWiring:
    """What Neutron and os-vif are told about rtkvm's switch on this host."""

    rundir: Path
    bridges: tuple[tuple[str, str], ...]
    """(physical network, the rtkvm bridge that carries it), sorted by physical network."""
    socket_dir: str
    """Where QEMU creates the vhost-user sockets and OVS connects to them."""

    @property
    def ovsdb(self) -> str:
        return f"unix:{db_socket(self.rundir)}"

    @property
    def physnets(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.bridges)

    @property
    def bridge_mappings(self) -> str:
        """The OVS agent's ``bridge_mappings``: ``physnet:bridge,...``."""
        return ",".join(f"{p}:{b}" for p, b in self.bridges)


def neutron_wiring(rundir: Path) -> NeutronWiring:
    """The wiring of the switch rtkvm runs from ``rundir``; DataplaneError when there is none."""
    layout = load_layout(rundir)
    bridges = tuple(sorted((b.physnet, b.name) for b in layout.bridges))
    return NeutronWiring(rundir, bridges, str(layout.socket_dir))


def running_wiring(ovs: OvsDpdk) -> NeutronWiring | None:
    """The wiring of the switch ``ovs`` if its ovs-vswitchd runs, else None (its layout file
    outlives it)."""
    try:
        wiring = neutron_wiring(ovs.rundir)
    except DataplaneError:
        return None
    return wiring if ovs.pid("ovs-vswitchd") is not None else None
