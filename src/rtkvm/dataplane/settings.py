"""Load the data plane's knowledge (src/rtkvm/data/dataplane.toml) into frozen values.

This module only parses and validates the TOML: which binaries, which DPDK
drivers must be present, hugepage sizes, the PMD scheduling choice, the
polled uplink's port and devargs, and the OVS other_config entries with
their reasons. It must not compute masks, read
the host or start anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtkvm.errors import DataError
from rtkvm.shipped import parse_toml, shipped_text

POLICIES = ("fifo", "rr", "other")


@dataclass(frozen=True)
class RequiredDriver:
    file: str
    package: str
    why: str


@dataclass(frozen=True)
class OtherConfig:
    key: str
    value: str
    """Literal value, or a template using {pmd_mask}, {lcore_mask}, {socket_mem}."""
    why: str


@dataclass(frozen=True)
class Binaries:
    ovsdb_tool: str
    ovsdb_server: str
    ovs_vsctl: str
    ovs_appctl: str
    vswitchd: str
    schema: str


@dataclass(frozen=True)
class DataplaneSettings:
    binaries: Binaries
    drivers_dir: str
    required_drivers: tuple[RequiredDriver, ...]
    hugepage_size_kb: int
    socket_mem_mb: int
    headroom_mb: int
    hugepage_mount: str
    pmd_policy: str
    pmd_priority: int
    pmd_why: str
    other_config: tuple[OtherConfig, ...]
    uplink_port: str = "up-{physnet}"
    """The uplink's OVS port name; {physnet}."""
    uplink_devargs: str = "net_af_packet_{physnet},iface={interface}"
    """dpdk-devargs of the uplink port on a kernel interface; {physnet}, {interface}."""
    uplink_nic_devargs: str = "{interface}"
    """dpdk-devargs of the uplink port on a NIC DPDK drives (the wiring's PCI address)."""
    uplink_why: str = ""
    uplink_latency: dict[str, str] = field(default_factory=dict)
    """What each kind of uplink (UplinkPort.kind) means for latency, in words."""

    @property
    def hugepages_per_node(self) -> int:
        """Hugepages to reserve on each NUMA node that runs PMD threads."""
        return (self.socket_mem_mb + self.headroom_mb) * 1024 // self.hugepage_size_kb


def load_settings(text: str | None = None, *, source: str = "dataplane.toml") -> DataplaneSettings:
    """Parse the shipped TOML (or ``text``); raises DataError naming the bad entry."""
    if text is None:
        text = shipped_text("dataplane.toml")
    data = parse_toml(text, source)
    try:
        return _build(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{source}: invalid data plane settings: {exc}") from None


def _build(data: dict[str, Any]) -> DataplaneSettings:
    bins = data["binaries"]
    binaries = Binaries(**{k: str(bins[k]) for k in Binaries.__dataclass_fields__})
    dpdk = data["dpdk"]
    drivers = tuple(
        RequiredDriver(str(d["file"]), str(d["package"]), str(d["why"]))
        for d in dpdk.get("required_driver", [])
    )
    huge = data["hugepages"]
    pmd = data["pmd"]
    policy = str(pmd["policy"])
    if policy not in POLICIES:
        raise ValueError(f"pmd.policy {policy!r} is not one of {', '.join(POLICIES)}")
    priority = int(pmd["priority"])
    if policy == "other" and priority != 0:
        raise ValueError("pmd.priority must be 0 with policy 'other'")
    if policy != "other" and not 1 <= priority <= 99:
        raise ValueError(f"pmd.priority {priority} is outside 1..99 for a real-time policy")
    entries = []
    for entry in data["other_config"]:
        if not str(entry.get("why", "")).strip():
            raise ValueError(f"other_config {entry.get('key')!r} has no 'why'")
        entries.append(OtherConfig(str(entry["key"]), str(entry["value"]), str(entry["why"])))
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        raise ValueError("other_config lists a key twice")
    return DataplaneSettings(
        binaries=binaries,
        drivers_dir=str(dpdk["drivers_dir"]),
        required_drivers=drivers,
        hugepage_size_kb=int(huge["size_kb"]),
        socket_mem_mb=int(huge["socket_mem_mb"]),
        headroom_mb=int(huge.get("headroom_mb", 0)),
        hugepage_mount=str(huge["mount_point"]),
        pmd_policy=policy,
        pmd_priority=priority,
        pmd_why=str(pmd["why"]),
        other_config=tuple(entries),
        uplink_port=str(data["uplink"]["port"]),
        uplink_devargs=str(data["uplink"]["devargs"]),
        uplink_nic_devargs=str(data["uplink"]["nic_devargs"]),
        uplink_why=str(data["uplink"]["why"]),
        uplink_latency=_uplink_latency(data["uplink"]),
    )


UPLINK_KINDS = ("dpdk", "af_packet", "kernel")


def _uplink_latency(uplink: dict[str, Any]) -> dict[str, str]:
    latency = {str(k): " ".join(str(v).split()) for k, v in uplink.get("latency", {}).items()}
    missing = [k for k in UPLINK_KINDS if not latency.get(k)]
    if missing:
        raise ValueError(f"[uplink.latency] says nothing of {', '.join(missing)}")
    return latency
