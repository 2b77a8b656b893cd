"""Cross-check the host wiring against what the link says: LLDP neighbours and link state.

Parses ``lldpctl -f keyvalue`` (from lldpd) into neighbours per interface and
judges each wired uplink: does the interface exist and have carrier, is the
neighbour the switch the wiring expects, does the neighbour's port carry the
VLANs of the networks mapped to it. Where nothing can be learned (no lldpd,
no neighbour on a veth) the finding says unknown, never a plausible default.
Reading link state goes through HostFS; :func:`read_neighbors` runs lldpctl
for the callers that want it (the CLI, the node agent), and
:func:`live_physnets` says which wires carry traffic by the report. This
module must not change the wiring.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

from rtkvm.findings import Finding, Report, Severity, Status
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.net.model import HostWiring, UnmanagedNetwork
from rtkvm.net.pcinic import BIND_FIX, DPDK_DRIVERS, is_pci_address, read_pci_nic


@dataclass(frozen=True)
class Neighbor:
    interface: str
    system_name: str | None = None
    port_id: str | None = None
    vlans: tuple[int, ...] = field(default=())


def parse_keyvalue(text: str) -> dict[str, Neighbor]:
    """Neighbours by local interface from ``lldpctl -f keyvalue`` lines (``lldp.IF.KEY=VALUE``)."""
    raw: dict[str, dict[str, list[str]]] = {}
    for line in text.splitlines():
        if not line.startswith("lldp.") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        parts = key.split(".")
        if len(parts) < 3:
            continue
        raw.setdefault(parts[1], {}).setdefault(".".join(parts[2:]), []).append(value.strip())
    result: dict[str, Neighbor] = {}
    for iface, fields in raw.items():
        vlans = sorted({int(v) for v in fields.get("vlan.vlan-id", []) if v.isdigit()})
        result[iface] = Neighbor(
            iface,
            _first(fields, "chassis.name"),
            _first(fields, "port.ifname") or _first(fields, "port.mac"),
            tuple(vlans),
        )
    return result


def read_neighbors(timeout: float = 10.0) -> dict[str, Neighbor] | Unknown:
    """What lldpd knows now (``lldpctl -f keyvalue``); Unknown when it cannot say."""
    try:
        done = subprocess.run(
            ["lldpctl", "-f", "keyvalue"], capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
    except FileNotFoundError:
        return Unknown("lldpctl", "lldpd is not installed")
    except subprocess.TimeoutExpired:
        return Unknown("lldpctl", f"lldpctl did not answer within {timeout:g} s")
    if done.returncode != 0:
        return Unknown("lldpctl", done.stderr.strip() or "lldpd is not running")
    return parse_keyvalue(done.stdout)


def live_physnets(report: Report, wiring: HostWiring) -> list[str]:
    """The physical networks whose uplink has carrier and whose LLDP neighbour, when one
    is expected and seen, is the expected one (a :func:`cross_check` report)."""
    status = {f.id: f.status for f in report.findings}
    return sorted(
        up.physnet
        for up in wiring.uplinks
        if status.get(f"net.uplink.{up.physnet}.link") is Status.PASS
        and status.get(f"net.uplink.{up.physnet}.lldp") is not Status.FAIL
    )


def _nic_finding(fs: HostFS, physnet: str, address: str) -> Finding:
    """A NIC DPDK drives has no kernel interface: present and bound for DPDK is what can be
    seen here (its link state is the switch's, in `rtkvm net status`)."""
    nic = read_pci_nic(fs, address)
    if nic is None:
        said, status = f"uplink NIC {address} of {physnet}: no such PCI device", Status.FAIL
        fix = f"fix the wiring entry for {physnet} (PCI addresses: lspci -D)"
    else:
        said = f"uplink {nic.binding()}"
        status = Status.PASS if nic.dpdk_ready else Status.FAIL
        fix = BIND_FIX.format(address=address)
    return Finding(
        f"net.uplink.{physnet}.link",
        Severity.ERROR,
        status,
        said,
        observed=nic.driver if nic is not None else None,
        expected=list(DPDK_DRIVERS),
        fix=fix,
    )


def _first(fields: dict[str, list[str]], key: str) -> str | None:
    values = fields.get(key)
    return values[0] if values else None


def cross_check(
    fs: HostFS,
    wiring: HostWiring,
    networks: Iterable[UnmanagedNetwork],
    neighbors: dict[str, Neighbor] | Unknown,
) -> Report:
    """One finding per uplink on link state, and per fact LLDP can confirm or contradict."""
    nets = tuple(networks)
    findings: list[Finding] = []
    for up in wiring.uplinks:
        if is_pci_address(up.interface):
            findings.append(_nic_finding(fs, up.physnet, up.interface))
            findings.append(
                _neighbor_finding(up.physnet, up.interface, up.expect_neighbor, neighbors)
            )
            continue
        carrier = fs.read_line(f"/sys/class/net/{up.interface}/carrier")
        findings.append(
            Finding(
                f"net.uplink.{up.physnet}.link",
                Severity.ERROR,
                Status.UNKNOWN
                if isinstance(carrier, Unknown)
                else (Status.PASS if carrier == "1" else Status.FAIL),
                f"uplink {up.interface} of {up.physnet}: "
                + ("no such interface or link down" if carrier != "1" else "carrier up"),
                observed=carrier,
                expected="1",
                fix=f"cable {up.interface} or fix the wiring entry for {up.physnet}",
            )
        )
        findings.append(_neighbor_finding(up.physnet, up.interface, up.expect_neighbor, neighbors))
        wanted = sorted(n.vlan for n in nets if n.physnet == up.physnet and n.vlan is not None)
        if wanted and isinstance(neighbors, dict) and neighbors.get(up.interface):
            seen = neighbors[up.interface].vlans
            missing = [v for v in wanted if v not in seen]
            findings.append(
                Finding(
                    f"net.uplink.{up.physnet}.vlans",
                    Severity.WARNING,
                    Status.FAIL if seen and missing else (Status.PASS if seen else Status.UNKNOWN),
                    f"neighbour port advertises VLANs {list(seen) or 'none'}",
                    observed=list(seen),
                    expected=wanted,
                    fix="ask the network team to trunk the missing VLANs to this port",
                )
            )
    return Report("host wiring", tuple(findings), ok_verdict="consistent", bad_verdict="mismatch")


def _neighbor_finding(
    physnet: str, iface: str, expected: str | None, neighbors: dict[str, Neighbor] | Unknown
) -> Finding:
    fid = f"net.uplink.{physnet}.lldp"
    if isinstance(neighbors, Unknown):
        return Finding(fid, Severity.WARNING, Status.UNKNOWN, f"no LLDP data: {neighbors}")
    seen = neighbors.get(iface)
    if seen is None:
        return Finding(
            fid,
            Severity.WARNING,
            Status.UNKNOWN,
            f"no LLDP neighbour on {iface} (a veth or a switch without LLDP says nothing)",
            expected=expected,
        )
    if expected is None:
        return Finding(
            fid,
            Severity.INFO,
            Status.PASS,
            f"{iface} is cabled to {seen.system_name} port {seen.port_id}",
            observed=seen.system_name,
        )
    return Finding(
        fid,
        Severity.ERROR,
        Status.PASS if seen.system_name == expected else Status.FAIL,
        f"{iface} is cabled to {seen.system_name} port {seen.port_id}",
        observed=seen.system_name,
        expected=expected,
        fix=f"the wiring says {physnet} reaches {expected}: check the cabling or the wiring file",
    )
