"""Compose the data plane for a host: inputs to SwitchLayout, and its saved form.

Reads the host's topology through HostFS, keeps the networks this host can
carry (the others are reported, not silently dropped), computes the layout,
and saves/loads it as JSON in the switch's run directory so that separate
``rtkvm net`` invocations (up, plug, status, down) agree on it. This module
must not start processes or change the host.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.layout import (
    Bridge,
    DataplaneCpus,
    SwitchLayout,
    UplinkPort,
    compute_layout,
    resolve_cpus,
)
from rtkvm.dataplane.settings import DataplaneSettings
from rtkvm.errors import DataplaneError
from rtkvm.footprint import SWITCH_RUNDIR, VHOST_SOCKET_DIR
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.net.model import Availability, HostWiring, UnmanagedNetwork, availability
from rtkvm.net.pcinic import dpdk_nics, read_pci_nic

DEFAULT_RUNDIR = Path(SWITCH_RUNDIR.path)
DEFAULT_SOCKET_DIR = VHOST_SOCKET_DIR.path
LAYOUT_FILE = "rtkvm-layout.json"


@dataclass(frozen=True)
class HostLayout:
    layout: SwitchLayout
    availability: Availability


def host_layout(
    fs: HostFS,
    settings: DataplaneSettings,
    plan: PartitionPlan,
    networks: Iterable[UnmanagedNetwork],
    wiring: HostWiring,
    *,
    socket_dir: str = DEFAULT_SOCKET_DIR,
    dataplane_override: CpuSet | None = None,
    allow_shared_with_rt: bool = False,
) -> HostLayout:
    """The layout of this host's switch, for the networks it can carry."""
    topo = read_topology(fs)
    node_of = {cpu: topo.node_of_cpu(cpu) for cpu in topo.online}
    cpus = resolve_cpus(
        plan,
        online=topo.online,
        node_of_cpu=node_of,
        dataplane_override=dataplane_override,
        allow_shared_with_rt=allow_shared_with_rt,
    )
    nets = tuple(networks)
    uplinks = [u.interface for u in wiring.uplinks]
    avail = availability(nets, wiring, [nic.name for nic in topo.nics] + dpdk_nics(fs, uplinks))
    layout = compute_layout(
        settings,
        cpus,
        node_of_cpu=node_of,
        nodes=[n.id for n in topo.nodes],
        networks=[n for n in nets if n.name in avail.available],
        wiring=wiring,
        socket_dir=socket_dir,
    )
    far = nic_numa_warnings(fs, layout, node_of)
    if far:
        cpus = dataclasses.replace(layout.cpus, warnings=(*layout.cpus.warnings, *far))
        layout = dataclasses.replace(layout, cpus=cpus)
    return HostLayout(layout, avail)


def nic_numa_warnings(
    fs: HostFS, layout: SwitchLayout, node_of_cpu: Mapping[int, int]
) -> tuple[str, ...]:
    """An uplink NIC DPDK drives on another NUMA node than every PMD: each frame crosses
    the interconnect, and its buffers are remote (said, not refused: a small host may
    have no choice)."""
    pmd_nodes = {node_of_cpu.get(cpu, 0) for cpu in layout.cpus.pmd}
    said = []
    for bridge in layout.bridges:
        nic = read_pci_nic(fs, bridge.uplink.interface) if bridge.uplink.kind == "dpdk" else None
        if nic is not None and nic.numa_node is not None and nic.numa_node not in pmd_nodes:
            said.append(
                f"uplink NIC {nic.address} of {bridge.physnet} is on NUMA node "
                f"{nic.numa_node}, its PMD CPUs {layout.cpus.pmd.format()} on node(s) "
                f"{', '.join(map(str, sorted(pmd_nodes)))}: every frame crosses nodes; give "
                "the data plane a CPU on the NIC's node (rtkvm host plan --dataplane)"
            )
    return tuple(said)


def layout_to_dict(layout: SwitchLayout) -> dict[str, Any]:
    c = layout.cpus
    return {
        "cpus": {
            "pmd": c.pmd.format(),
            "lcore": c.lcore.format(),
            "process": c.process.format(),
            "shared_with_rt": c.shared_with_rt,
            "warnings": list(c.warnings),
        },
        "other_config": dict(layout.other_config),
        "hugepages": {str(k): v for k, v in layout.hugepages.items()},
        "bridges": [
            {
                "name": b.name,
                "physnet": b.physnet,
                "uplink": b.uplink.interface,
                "trunks": list(b.uplink.trunks),
                "uplink_port": b.uplink.port,
                "uplink_devargs": b.uplink.devargs,
                "networks": list(b.networks),
            }
            for b in layout.bridges
        ],
        "vlans": dict(layout.vlans),
        "carried": list(layout.carried),
        "socket_dir": str(layout.socket_dir),
        "ports": [
            {"bridge": p.bridge, "port": p.port, "socket": str(p.socket), "tag": p.tag}
            for p in layout.ports
        ],
    }


def layout_from_dict(data: dict[str, Any]) -> SwitchLayout:
    c = data["cpus"]
    cpus = DataplaneCpus(
        CpuSet.parse(c["pmd"]),
        CpuSet.parse(c["lcore"]),
        CpuSet.parse(c["process"]),
        bool(c["shared_with_rt"]),
        tuple(c["warnings"]),
    )
    bridges = tuple(
        Bridge(
            b["name"],
            b["physnet"],
            UplinkPort(
                b["uplink"],
                tuple(b["trunks"]),
                b.get("uplink_port", ""),
                b.get("uplink_devargs", ""),
            ),
            tuple(b["networks"]),
        )
        for b in data["bridges"]
    )
    return SwitchLayout(
        cpus,
        dict(data["other_config"]),
        {int(k): int(v) for k, v in data["hugepages"].items()},
        bridges,
        dict(data["vlans"]),
        PurePosixPath(data["socket_dir"]),
        carried=tuple(data.get("carried", ())),
    )


def save_layout(rundir: Path, layout: SwitchLayout) -> None:
    rundir.mkdir(parents=True, exist_ok=True, mode=0o750)
    (rundir / LAYOUT_FILE).write_text(json.dumps(layout_to_dict(layout), indent=2))


def load_layout(rundir: Path) -> SwitchLayout:
    path = rundir / LAYOUT_FILE
    try:
        return layout_from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise DataplaneError(
            f"no rtkvm switch in {rundir} (no {LAYOUT_FILE}): run `rtkvm net up`"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataplaneError(
            f"{path} is damaged ({exc}); stop the switch and start it again"
        ) from None
