"""The switch configuration rtkvm computes: CPU masks, hugepages, bridges, ports.

From the partition plan (or an explicit, loudly warned override), the NUMA
layout, the unmanaged networks, the host wiring and the guest NICs to plug,
this module computes every value the switch gets: other_config (pmd-cpu-mask,
dpdk-lcore-mask, dpdk-socket-mem, ...), hugepages per NUMA node, one netdev
bridge per physical network with its uplink (a trunk of exactly the VLANs in
use, or the whole link for one untagged network), and one dpdkvhostuserclient
port per guest NIC with its socket path and VLAN tag. It also renders the
ovs-vsctl arguments for them. It is pure: it must not read the host, run a
command or start a process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.names import VhostPortName, bridge_name, vhost_port
from rtkvm.dataplane.settings import DataplaneSettings
from rtkvm.errors import PlanError
from rtkvm.host.partition import PartitionPlan
from rtkvm.net.model import HostWiring, UnmanagedNetwork, check_isolation
from rtkvm.net.pcinic import is_pci_address

SHARED_WARNING = (
    "WARNING: the data plane's PMD threads share CPUs {cpus} with RT vCPUs. This host has "
    "too few CPUs for separate roles; the switch works, but every latency figure measured "
    "this way means nothing for real-time behaviour."
)


@dataclass(frozen=True)
class DataplaneCpus:
    """Where the switch's threads run."""

    pmd: CpuSet
    lcore: CpuSet
    """The DPDK main lcore: one housekeeping CPU."""
    process: CpuSet
    """Affinity ovs-vswitchd starts with: housekeeping. DPDK gives its control threads
    the start-up affinity minus the lcores, so starting on all CPUs would put them on the
    PMD CPUs."""
    shared_with_rt: bool = False
    warnings: tuple[str, ...] = ()


def resolve_cpus(
    plan: PartitionPlan,
    *,
    online: CpuSet,
    node_of_cpu: Mapping[int, int],
    dataplane_override: CpuSet | None = None,
    allow_shared_with_rt: bool = False,
) -> DataplaneCpus:
    """PMD CPUs from the plan (or the override), checked against the other roles."""
    pmd = dataplane_override if dataplane_override is not None else plan.dataplane
    if not pmd:
        raise PlanError(
            f"the partition plan has no dataplane CPUs (housekeeping {plan.housekeeping}, "
            f"RT vCPUs {plan.rt_vcpu or 'none'}; {len(online)} CPUs online): this host has "
            "not enough CPUs for a separate data plane. Plan one with dataplane CPUs on a "
            "bigger host, or for a functional test only pass --dataplane-cpus with "
            "--share-with-rt-vcpus"
        )
    if not pmd <= online:
        raise PlanError(f"dataplane CPUs {pmd - online} are not online (online: {online})")
    on_housekeeping = pmd & plan.housekeeping
    if on_housekeeping:
        raise PlanError(
            f"dataplane CPUs {on_housekeeping} are housekeeping CPUs: a PMD thread polls "
            "100% of its CPU and would starve the OS; choose CPUs outside housekeeping"
        )
    warnings: list[str] = []
    shared = pmd & plan.rt_vcpu
    if shared:
        if not allow_shared_with_rt:
            raise PlanError(
                f"dataplane CPUs {shared} are also RT vCPU CPUs; the PMD threads and the "
                "guests would take turns on one core. Pass --share-with-rt-vcpus to accept "
                "this for a functional test (figures will mean nothing)"
            )
        warnings.append(SHARED_WARNING.format(cpus=shared))
    pmd_nodes = {node_of_cpu.get(cpu, 0) for cpu in pmd}
    same_node = CpuSet(c for c in plan.housekeeping if node_of_cpu.get(c, 0) in pmd_nodes)
    lcore = CpuSet([(same_node or plan.housekeeping).min()])
    return DataplaneCpus(pmd, lcore, plan.housekeeping, bool(shared), tuple(warnings))


@dataclass(frozen=True)
class UplinkPort:
    interface: str
    trunks: tuple[int, ...] = ()
    """VLANs carried (vlan_mode=trunk); empty for the one untagged network of the label."""
    port: str = ""
    """The OVS port (type=dpdk) that a PMD polls; '' in a layout saved before uplinks were
    polled: the kernel interface itself is then the port."""
    devargs: str = ""
    """dpdk-devargs: the NIC's PCI address when DPDK drives it (vfio-pci), else DPDK's
    af_packet driver on the kernel interface."""

    @property
    def port_name(self) -> str:
        return self.port or self.interface

    @property
    def kind(self) -> str:
        """dpdk: a NIC DPDK drives itself (vfio-pci), polled by a PMD; af_packet: DPDK's
        af_packet driver on the kernel interface, polled by a PMD; kernel: the kernel
        interface itself on the bridge (a layout saved before uplinks were polled), served
        by ovs-vswitchd's main thread."""
        if not self.devargs:
            return "kernel"
        return "dpdk" if is_pci_address(self.interface) else "af_packet"

    @property
    def reader(self) -> str:
        """Who reads the wire for the PMD, in words."""
        return {"dpdk": "DPDK's own NIC driver, vfio-pci", "af_packet": "DPDK af_packet"}.get(
            self.kind, "the kernel"
        )


def uplink_port(
    settings: DataplaneSettings, physnet: str, interface: str, trunks: tuple[int, ...]
) -> UplinkPort:
    """The polled uplink of a physical network (port and devargs from the data): a NIC
    the wiring names by PCI address is DPDK's own, any other interface is read through
    DPDK's af_packet driver."""
    values = {"physnet": physnet, "interface": interface}
    devargs = settings.uplink_nic_devargs if is_pci_address(interface) else settings.uplink_devargs
    return UplinkPort(
        interface,
        trunks,
        settings.uplink_port.format(**values),
        devargs.format(**values),
    )


@dataclass(frozen=True)
class Bridge:
    name: str
    physnet: str
    uplink: UplinkPort
    networks: tuple[str, ...]


@dataclass(frozen=True)
class GuestNic:
    """A guest NIC to plug: which guest, which NIC index, which network."""

    guest: str
    nic: int
    network: str


@dataclass(frozen=True)
class VhostPort:
    bridge: str
    network: str
    name: VhostPortName
    tag: int | None

    @property
    def port(self) -> str:
        return self.name.port

    @property
    def socket(self) -> PurePosixPath:
        return self.name.socket


@dataclass(frozen=True)
class SwitchLayout:
    cpus: DataplaneCpus
    other_config: dict[str, str]
    hugepages: dict[int, int]
    """NUMA node -> pages of the settings' hugepage size to reserve."""
    bridges: tuple[Bridge, ...]
    vlans: dict[str, int | None]
    """Network name -> VLAN id (None: untagged)."""
    socket_dir: PurePosixPath
    ports: tuple[VhostPort, ...] = ()
    carried: tuple[str, ...] = ()
    """Networks laid out later because the control plane has them (DataPlane.carry), not
    from the networks file: the ones DataPlane.drop may take away again."""

    def bridge_of_network(self, network: str) -> Bridge:
        for bridge in self.bridges:
            if network in bridge.networks:
                return bridge
        known = ", ".join(n for b in self.bridges for n in b.networks) or "none"
        raise PlanError(f"network {network!r} is not laid out on this host (laid out: {known})")


def compute_layout(
    settings: DataplaneSettings,
    cpus: DataplaneCpus,
    *,
    node_of_cpu: Mapping[int, int],
    nodes: Iterable[int],
    networks: Iterable[UnmanagedNetwork],
    wiring: HostWiring,
    socket_dir: str | PurePosixPath,
    nics: Iterable[GuestNic] = (),
) -> SwitchLayout:
    """Every value the switch gets; raises NetworkError/PlanError on bad input."""
    all_nodes = sorted(set(nodes) | {0})
    pmd_nodes = {node_of_cpu.get(cpu, 0) for cpu in cpus.pmd}
    socket_mem = ",".join(
        str(settings.socket_mem_mb if node in pmd_nodes else 0)
        for node in range(max(all_nodes) + 1)
    )
    values = {
        "pmd_mask": "0x" + cpus.pmd.format_mask().replace(",", ""),
        "lcore_mask": "0x" + cpus.lcore.format_mask().replace(",", ""),
        "socket_mem": socket_mem,
    }
    other_config = {e.key: e.value.format(**values) for e in settings.other_config}
    hugepages = {node: settings.hugepages_per_node for node in sorted(pmd_nodes)}

    nets = check_isolation(networks)
    bridges: list[Bridge] = []
    for physnet in sorted({n.physnet for n in nets}):
        on_label = [n for n in nets if n.physnet == physnet]
        uplink = wiring.uplink(physnet)
        trunks = tuple(sorted(n.vlan for n in on_label if n.vlan is not None))
        bridges.append(
            Bridge(
                bridge_name(physnet),
                physnet,
                uplink_port(settings, physnet, uplink.interface, trunks),
                tuple(n.name for n in on_label),
            )
        )
    vlans = {n.name: n.vlan for n in nets}
    layout = SwitchLayout(
        cpus, other_config, hugepages, tuple(bridges), vlans, PurePosixPath(str(socket_dir))
    )
    ports: list[VhostPort] = []
    seen: set[tuple[str, int]] = set()
    for nic in nics:
        if (nic.guest, nic.nic) in seen:
            raise PlanError(f"guest {nic.guest!r} NIC {nic.nic} is plugged twice")
        seen.add((nic.guest, nic.nic))
        ports.append(port_for(layout, nic))
    return dataclasses.replace(layout, ports=tuple(ports))


def port_for(layout: SwitchLayout, nic: GuestNic) -> VhostPort:
    """The switch port of a guest NIC on a laid-out network."""
    if nic.network not in layout.vlans:
        known = ", ".join(layout.vlans) or "none"
        raise PlanError(
            f"guest {nic.guest!r} NIC {nic.nic}: no network {nic.network!r} on this host "
            f"(networks here: {known})"
        )
    bridge = layout.bridge_of_network(nic.network)
    name = vhost_port(layout.socket_dir, nic.guest, nic.nic)
    return VhostPort(bridge.name, nic.network, name, layout.vlans[nic.network])


# -- ovs-vsctl arguments (pure rendering) -------------------------------------------


def other_config_args(other_config: Mapping[str, str]) -> list[str]:
    args = ["set", "Open_vSwitch", "."]
    args.extend(f"other_config:{key}={_quote(value)}" for key, value in other_config.items())
    return args


def bridge_args(bridge: Bridge) -> list[str]:
    """Create the netdev bridge and attach its uplink: a DPDK port a PMD polls (the NIC
    DPDK drives, or af_packet on the kernel interface), or the kernel interface itself in
    an old saved layout."""
    up = bridge.uplink
    args = ["--may-exist", "add-br", bridge.name, "--", "set", "Bridge", bridge.name]
    args += ["datapath_type=netdev", "fail_mode=standalone"]
    args += ["--", "--may-exist", "add-port", bridge.name, up.port_name]
    if up.devargs:
        args += ["--", "set", "Interface", up.port_name, "type=dpdk"]
        args += [f"options:dpdk-devargs={_quote(up.devargs)}"]
    if up.trunks:
        trunks = ",".join(str(v) for v in up.trunks)
        args += ["--", "set", "Port", up.port_name, "vlan_mode=trunk"]
        args += [f"trunks={trunks}"]
    return args


def port_args(port: VhostPort) -> list[str]:
    """Add a dpdkvhostuserclient port: QEMU is the server, OVS reconnects after restarts."""
    args = ["--may-exist", "add-port", port.bridge, port.port]
    args += ["--", "set", "Interface", port.port, "type=dpdkvhostuserclient"]
    args += [f"options:vhost-server-path={_quote(str(port.socket))}"]
    if port.tag is not None:
        args += ["--", "set", "Port", port.port, f"tag={port.tag}", "vlan_mode=access"]
    return args


def _quote(value: str) -> str:
    """ovsdb string quoting when the value has characters ovs-vsctl would split on."""
    if value and all(ch.isalnum() or ch in "-_./:" for ch in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
