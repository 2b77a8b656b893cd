"""Fakes at the agent's process boundaries: a hypervisor and a switch held in memory."""

from __future__ import annotations

from pathlib import PurePosixPath

from lxml import etree

from rtkvm.dataplane.backend import Capabilities, PluggedNic
from rtkvm.dataplane.layout import GuestNic
from rtkvm.dataplane.names import vhost_port
from rtkvm.errors import DataplaneError, GuestError
from rtkvm.guest.hypervisor import DomainState

SOCKET_DIR = "/run/rtkvm/vhost"


class FakeHypervisor:
    """Domains by name: (uuid, running, xml). ``fail_create`` makes define raise,
    ``fail_start`` makes start raise."""

    def __init__(self) -> None:
        self.defined: dict[str, tuple[str, bool, str]] = {}
        self.fail_create: str | None = None
        self.fail_start: str | None = None
        self.fail_remove: str | None = None
        self.obeys_acpi = True
        self.shutdowns: list[str] = []
        self.powered_off: list[str] = []

    def domains(self) -> list[DomainState]:
        return [DomainState(n, u, r) for n, (u, r, _) in sorted(self.defined.items())]

    def define(self, xml: str, *, start: bool = False) -> str:
        if self.fail_create is not None:
            raise GuestError(self.fail_create)
        root = etree.fromstring(xml.encode())
        name, uuid = root.findtext("name") or "", root.findtext("uuid") or ""
        if name in self.defined:
            raise GuestError(f"a domain named {name!r} already exists")
        if start and self.fail_start is not None:
            raise GuestError(self.fail_start)  # not started: not defined either
        self.defined[name] = (uuid, start, xml)
        return name

    def start(self, name: str) -> None:
        if self.fail_start is not None:
            raise GuestError(self.fail_start)
        uuid, _, xml = self.defined[name]
        self.defined[name] = (uuid, True, xml)

    def shutdown(self, name: str) -> None:
        """The ACPI button: the guest powers off only when ``obeys_acpi`` (the probe does not)."""
        self.shutdowns.append(name)
        if self.obeys_acpi:
            self.power_off(name)

    def power_off(self, name: str) -> None:
        uuid, _, xml = self.defined[name]
        self.defined[name] = (uuid, False, xml)
        self.powered_off.append(name)

    def remove(self, name: str) -> None:
        if self.fail_remove is not None:
            raise GuestError(self.fail_remove)
        self.defined.pop(name, None)


class FakeSwitch:
    """Ports by (guest, nic) -> network; ``fail_plug_nic`` makes plugging that NIC fail."""

    def __init__(
        self,
        networks: tuple[str, ...] = ("blue",),
        *,
        up: bool = True,
        physnets: tuple[str, ...] = ("blue", "red"),
        links_down: tuple[str, ...] = (),
    ) -> None:
        self.networks = networks
        self.up = up
        self.physnets = physnets
        self.links_down = links_down
        self.carried_list: list[str] = []
        self.plugged: dict[tuple[str, int], str] = {}
        self.unplugged: list[tuple[str, int]] = []
        self.fail_plug_nic: int | None = None

    def describe(self) -> Capabilities:
        if not self.up:
            raise DataplaneError("ovs-vswitchd is not running")
        return Capabilities(
            "fake", "vhostuser", PurePosixPath(SOCKET_DIR), self.networks, "3", "fifo/95", False,
            self.physnets, links_down=self.links_down,
        )  # fmt: skip

    def plug(self, nic: GuestNic) -> PluggedNic:
        if nic.network not in self.networks:
            raise DataplaneError(f"no network {nic.network!r} on this switch")
        if nic.nic == self.fail_plug_nic:
            raise DataplaneError(f"port for NIC {nic.nic} refused")
        self.plugged[(nic.guest, nic.nic)] = nic.network
        name = vhost_port(SOCKET_DIR, nic.guest, nic.nic)
        return PluggedNic(name.port, name.socket)

    def unplug(self, nic: GuestNic) -> None:
        self.plugged.pop((nic.guest, nic.nic), None)
        self.unplugged.append((nic.guest, nic.nic))

    def ports(self) -> set[tuple[str, int]]:
        return set(self.plugged)

    def network_for(self, name: str, physnet: str, vlan: int | None) -> str:
        return name  # the fake's networks are named as the cloud's

    def carried(self) -> tuple[str, ...]:
        return tuple(self.carried_list)

    def drop(self, name: str) -> bool:
        if name not in self.carried_list or name in self.plugged.values():
            return False
        self.carried_list.remove(name)
        self.networks = tuple(n for n in self.networks if n != name)
        return True

    def carry(self, name: str, physnet: str, vlan: int | None) -> bool:
        if name in self.networks:
            return False
        if physnet not in self.physnets:
            raise DataplaneError(f"the switch has no bridge for {physnet!r}")
        self.networks = (*self.networks, name)
        self.carried_list.append(name)
        return True
