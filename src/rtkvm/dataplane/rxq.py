"""Which PMD polls which port: ``ovs-appctl dpif-netdev/pmd-rxq-show`` read, uplinks judged.

:func:`parse_rxq` turns the command's text into port -> the cores whose PMD
serves one of its receive queues. :func:`check_uplinks` makes one finding per
bridge: its uplink is polled when every queue of its port is served by a PMD
on the data plane's CPUs (which run at the data plane's RT priority, checked
by rtkvm.dataplane.threads); an uplink that is a kernel port is served by
ovs-vswitchd's main thread and says so. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.layout import Bridge
from rtkvm.findings import Finding, Severity, Status

_PMD = re.compile(r"^pmd thread numa_id \d+ core_id (\d+):")
_PORT = re.compile(r"^\s*port:\s*(\S+)\s+queue-id:\s*(\d+)")

WHY = (
    "The uplink is the RT network's way to the physical world; a port no PMD polls is "
    "served by ovs-vswitchd's main thread on housekeeping CPUs, between its other work."
)


def parse_rxq(text: str) -> dict[str, set[int]]:
    """Port name -> the core ids whose PMD serves one of its receive queues."""
    found: dict[str, set[int]] = {}
    core: int | None = None
    for line in text.splitlines():
        pmd = _PMD.match(line)
        if pmd:
            core = int(pmd.group(1))
            continue
        port = _PORT.match(line)
        if port and core is not None:
            found.setdefault(port.group(1), set()).add(core)
    return found


def check_uplinks(
    rxq: str,
    bridges: Iterable[Bridge],
    pmd_cpus: CpuSet,
    latency: Mapping[str, str] | None = None,
) -> list[Finding]:
    """One finding per bridge: its uplink polled on the PMD CPUs; with ``latency``
    (DataplaneSettings.uplink_latency), the message says what the uplink's kind means."""
    polled = parse_rxq(rxq)
    findings = []
    for bridge in bridges:
        up = bridge.uplink
        cores = polled.get(up.port_name, set())
        on_pmd = bool(cores) and CpuSet(cores) <= pmd_cpus
        if not up.devargs:
            message = (
                f"uplink {up.interface} of {bridge.physnet} is a kernel port: not polled "
                "(a layout saved before uplinks were polled: restart with `rtkvm net up`)"
            )
        elif on_pmd:
            message = (
                f"uplink {up.interface} of {bridge.physnet}: port {up.port_name} "
                f"({up.reader}) polled by the PMD on CPU {CpuSet(cores)}"
            )
        else:
            message = (
                f"uplink {up.interface} of {bridge.physnet}: port {up.port_name} is polled on "
                f"{CpuSet(cores) if cores else 'no PMD'}, not on the data-plane CPUs {pmd_cpus}"
            )
        meaning = (latency or {}).get(up.kind)
        if meaning:
            message += f"; latency: {meaning}"
        findings.append(
            Finding(
                f"dataplane.uplink.{bridge.physnet}",
                Severity.ERROR,
                Status.PASS if on_pmd and up.devargs else Status.FAIL,
                message,
                observed=sorted(cores),
                expected=f"a PMD on {pmd_cpus}",
                why=WHY,
                fix="rtkvm net up lays the uplink out as a DPDK port; check ovs-vswitchd.log "
                "for the port's dpdk-devargs",
            )
        )
    return findings
