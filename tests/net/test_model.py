"""Unmanaged networks and host wiring: validation, isolation, availability."""

from __future__ import annotations

import pytest

from rtkvm.errors import NetworkError
from rtkvm.net.model import (
    HostWiring,
    UnmanagedNetwork,
    Uplink,
    availability,
    check_isolation,
    load_networks,
    load_wiring,
)


@pytest.mark.parametrize("vlan", [0, 4095, 5000, -3, True, "100"])
def test_vlan_out_of_range(vlan: object) -> None:
    with pytest.raises(NetworkError, match=r"VLAN id .* is out of range; use 1\.\.4094"):
        UnmanagedNetwork("blue", "phys1", vlan)  # type: ignore[arg-type]


def test_valid_networks() -> None:
    nets = check_isolation(
        [UnmanagedNetwork("blue", "phys1", 1), UnmanagedNetwork("red", "phys1", 4094)]
    )
    assert [n.segment for n in nets] == [("phys1", 1), ("phys1", 4094)]


@pytest.mark.parametrize(
    ("nets", "message"),
    [
        ([("blue", "p1", 10), ("red", "p1", 10)], "would be one L2 segment"),
        ([("blue", "p1", None), ("red", "p1", None)], "both untagged"),
        ([("blue", "p1", None), ("red", "p1", 20)], "untagged frames would mix"),
        ([("blue", "p1", 10), ("blue", "p2", 10)], "defined twice"),
    ],
)
def test_isolation_violations(nets: list[tuple[str, str, int | None]], message: str) -> None:
    with pytest.raises(NetworkError, match=message):
        check_isolation([UnmanagedNetwork(*n) for n in nets])


def test_wiring_errors() -> None:
    with pytest.raises(NetworkError, match="wired twice"):
        HostWiring((Uplink("p1", "eth1"), Uplink("p1", "eth2")))
    with pytest.raises(NetworkError, match="uplink of both"):
        HostWiring((Uplink("p1", "eth1"), Uplink("p2", "eth1")))
    with pytest.raises(NetworkError, match=r"'p3' has no uplink on this host \(wired: p1\)"):
        HostWiring((Uplink("p1", "eth1"),)).uplink("p3")


def test_availability() -> None:
    nets = [
        UnmanagedNetwork("blue", "p1", 10),
        UnmanagedNetwork("red", "p2"),
        UnmanagedNetwork("gold", "p3"),
    ]
    wiring = HostWiring((Uplink("p1", "eth1"), Uplink("p2", "eth2")))
    result = availability(nets, wiring, ["lo", "eth1"])
    assert result.available == ("blue",)
    assert "'eth2' of physical network 'p2' does not exist" in result.unavailable["red"]
    assert "no uplink on this host" in result.unavailable["gold"]


def test_load_from_toml() -> None:
    nets = load_networks(
        '[[network]]\nname = "blue"\nphysnet = "p1"\nvlan = 10\n'
        '[[network]]\nname = "red"\nphysnet = "p2"\n'
    )
    assert nets == (UnmanagedNetwork("blue", "p1", 10), UnmanagedNetwork("red", "p2"))
    wiring = load_wiring('[[uplink]]\nphysnet = "p1"\ninterface = "eth1"\n')
    assert wiring.uplink("p1").interface == "eth1"
    with pytest.raises(NetworkError, match="lacks 'physnet'"):
        load_networks('[[network]]\nname = "blue"\n')
    with pytest.raises(NetworkError, match="not valid TOML"):
        load_wiring("[[uplink")
