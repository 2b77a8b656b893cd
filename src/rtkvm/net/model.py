"""Unmanaged networks and host wiring, as validated values.

An unmanaged network is an L2 segment: a name, an optional VLAN id and a
physical network label; no IP, no subnet, no DHCP. A host's wiring maps
physical network labels to uplink interfaces. From both, this module says
which networks a host can carry (what the scheduler filters on) and refuses
definitions that would break isolation (two segments that would share one
L2 domain). It is pure: it must not read the host (pass the interfaces that
exist in) nor build switch objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rtkvm.errors import NetworkError
from rtkvm.net.names import check_label
from rtkvm.shipped import parse_toml

VLAN_MIN = 1
VLAN_MAX = 4094


@dataclass(frozen=True)
class UnmanagedNetwork:
    """An L2 segment with no IP management."""

    name: str
    physnet: str
    vlan: int | None = None

    def __post_init__(self) -> None:
        check_label("network name", self.name)
        check_label("physical network", self.physnet)
        if self.vlan is not None and (
            isinstance(self.vlan, bool)
            or not isinstance(self.vlan, int)
            or not VLAN_MIN <= self.vlan <= VLAN_MAX
        ):
            raise NetworkError(
                f"network {self.name!r}: VLAN id {self.vlan!r} is out of range; use "
                f"{VLAN_MIN}..{VLAN_MAX} (0 and 4095 are reserved by 802.1Q) or no VLAN"
            )

    @property
    def segment(self) -> tuple[str, int | None]:
        """What makes it a distinct L2 domain: physical network and VLAN."""
        return (self.physnet, self.vlan)


@dataclass(frozen=True)
class Uplink:
    physnet: str
    interface: str
    expect_neighbor: str | None = None
    """Optional LLDP system name of the switch this uplink must be cabled to."""


@dataclass(frozen=True)
class HostWiring:
    """A host's physical network labels and the interface that carries each."""

    uplinks: tuple[Uplink, ...] = ()

    def __post_init__(self) -> None:
        seen_labels: set[str] = set()
        seen_ifaces: dict[str, str] = {}
        for up in self.uplinks:
            check_label("physical network", up.physnet)
            if up.physnet in seen_labels:
                raise NetworkError(f"physical network {up.physnet!r} is wired twice; keep one")
            if up.interface in seen_ifaces:
                raise NetworkError(
                    f"interface {up.interface!r} is the uplink of both "
                    f"{seen_ifaces[up.interface]!r} and {up.physnet!r}; one interface can "
                    "carry one physical network (use VLANs on one label instead)"
                )
            seen_labels.add(up.physnet)
            seen_ifaces[up.interface] = up.physnet

    def uplink(self, physnet: str) -> Uplink:
        for up in self.uplinks:
            if up.physnet == physnet:
                return up
        known = ", ".join(sorted(u.physnet for u in self.uplinks)) or "none"
        raise NetworkError(
            f"physical network {physnet!r} has no uplink on this host (wired: {known}); "
            f'add it to the host wiring as {physnet} = "<interface>"'
        )


def check_isolation(networks: Iterable[UnmanagedNetwork]) -> tuple[UnmanagedNetwork, ...]:
    """Refuse networks that would share an L2 domain or mix flat and VLAN on one label."""
    result = tuple(networks)
    by_name: dict[str, UnmanagedNetwork] = {}
    by_segment: dict[tuple[str, int | None], str] = {}
    for net in result:
        if net.name in by_name:
            raise NetworkError(f"network {net.name!r} is defined twice")
        other = by_segment.get(net.segment)
        if other is not None:
            where = f"VLAN {net.vlan}" if net.vlan is not None else "untagged"
            raise NetworkError(
                f"networks {other!r} and {net.name!r} are both {where} on physical network "
                f"{net.physnet!r}: they would be one L2 segment; give one a different VLAN id"
            )
        by_name[net.name] = net
        by_segment[net.segment] = net.name
    for physnet in {n.physnet for n in result}:
        on_label = [n for n in result if n.physnet == physnet]
        flat = [n.name for n in on_label if n.vlan is None]
        tagged = [n.name for n in on_label if n.vlan is not None]
        if flat and tagged:
            raise NetworkError(
                f"physical network {physnet!r} carries untagged network {flat[0]!r} and VLAN "
                f"networks {', '.join(tagged)}: untagged frames would mix with the trunk; "
                f"give {flat[0]!r} a VLAN id or its own physical network label"
            )
    return result


@dataclass(frozen=True)
class Availability:
    """Which networks a host can carry, and why not for the others."""

    available: tuple[str, ...]
    unavailable: dict[str, str] = field(default_factory=dict)


def availability(
    networks: Iterable[UnmanagedNetwork], wiring: HostWiring, interfaces: Iterable[str]
) -> Availability:
    """Networks whose physical network has a wired uplink that exists on the host."""
    present = set(interfaces)
    ok: list[str] = []
    missing: dict[str, str] = {}
    for net in networks:
        try:
            up = wiring.uplink(net.physnet)
        except NetworkError as exc:
            missing[net.name] = str(exc)
            continue
        if up.interface not in present:
            missing[net.name] = (
                f"uplink {up.interface!r} of physical network {net.physnet!r} does not exist "
                "on this host; fix the host wiring or create the interface"
            )
            continue
        ok.append(net.name)
    return Availability(tuple(ok), missing)


def load_networks(text: str, *, source: str = "networks") -> tuple[UnmanagedNetwork, ...]:
    """``[[network]]`` tables with name, physnet and optional vlan."""
    data = _toml(text, source)
    nets = []
    for entry in data.get("network", []):
        try:
            nets.append(
                UnmanagedNetwork(
                    name=str(entry["name"]), physnet=str(entry["physnet"]), vlan=entry.get("vlan")
                )
            )
        except KeyError as exc:
            raise NetworkError(f"{source}: a [[network]] lacks {exc}") from None
    return check_isolation(nets)


def load_wiring(text: str, *, source: str = "wiring") -> HostWiring:
    """``[[uplink]]`` tables with physnet, interface and optional expect_neighbor."""
    data = _toml(text, source)
    ups = []
    for entry in data.get("uplink", []):
        try:
            ups.append(
                Uplink(
                    physnet=str(entry["physnet"]),
                    interface=str(entry["interface"]),
                    expect_neighbor=entry.get("expect_neighbor"),
                )
            )
        except KeyError as exc:
            raise NetworkError(f"{source}: an [[uplink]] lacks {exc}") from None
    return HostWiring(tuple(ups))


def _toml(text: str, source: str) -> dict[str, Any]:
    return parse_toml(text, source, NetworkError)
