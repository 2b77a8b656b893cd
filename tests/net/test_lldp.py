"""LLDP neighbour parsing and the wiring cross-check on a fake /sys tree."""

from __future__ import annotations

from pathlib import Path

from rtkvm.findings import Status
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.net.lldp import cross_check, parse_keyvalue
from rtkvm.net.model import HostWiring, UnmanagedNetwork, Uplink

KEYVALUE = """\
lldp.ens1.via=LLDP
lldp.ens1.rid=1
lldp.ens1.age=0 day, 00:01:02
lldp.ens1.chassis.mac=00:11:22:33:44:55
lldp.ens1.chassis.name=tor-a
lldp.ens1.port.ifname=Ethernet12
lldp.ens1.vlan.vlan-id=100
lldp.ens1.vlan.pvid=yes
lldp.ens1.vlan=v100
lldp.ens1.vlan.vlan-id=200
lldp.ens2.chassis.name=tor-b
lldp.ens2.port.mac=aa:bb:cc:dd:ee:ff
"""


def test_parse_keyvalue() -> None:
    n = parse_keyvalue(KEYVALUE)
    assert n["ens1"].system_name == "tor-a" and n["ens1"].port_id == "Ethernet12"
    assert n["ens1"].vlans == (100, 200)
    assert n["ens2"].port_id == "aa:bb:cc:dd:ee:ff" and n["ens2"].vlans == ()


def _fs(tmp_path: Path, carriers: dict[str, str]) -> HostFS:
    for iface, value in carriers.items():
        d = tmp_path / "sys" / "class" / "net" / iface
        d.mkdir(parents=True)
        (d / "carrier").write_text(value + "\n")
    return HostFS(tmp_path)


def test_cross_check_flags_mismatches(tmp_path: Path) -> None:
    fs = _fs(tmp_path, {"ens1": "1", "ens2": "0"})
    wiring = HostWiring(
        (Uplink("p1", "ens1", expect_neighbor="tor-a"), Uplink("p2", "ens2", "tor-a"))
    )
    nets = [UnmanagedNetwork("blue", "p1", 100), UnmanagedNetwork("gold", "p1", 300)]
    report = cross_check(fs, wiring, nets, parse_keyvalue(KEYVALUE))
    status = {f.id: f.status for f in report.findings}
    assert status["net.uplink.p1.link"] is Status.PASS
    assert status["net.uplink.p1.lldp"] is Status.PASS
    assert status["net.uplink.p1.vlans"] is Status.FAIL  # VLAN 300 not trunked to the port
    assert status["net.uplink.p2.link"] is Status.FAIL  # no carrier
    assert status["net.uplink.p2.lldp"] is Status.FAIL  # cabled to tor-b, not tor-a
    assert not report.ok


def test_no_lldp_is_unknown_not_ok(tmp_path: Path) -> None:
    fs = _fs(tmp_path, {"veth0": "1"})
    report = cross_check(
        fs, HostWiring((Uplink("p1", "veth0"),)), [], Unknown("lldpctl", "lldpd is not installed")
    )
    status = {f.id: f.status for f in report.findings}
    assert status["net.uplink.p1.lldp"] is Status.UNKNOWN
    assert status["net.uplink.p1.link"] is Status.PASS
