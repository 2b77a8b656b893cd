"""What a node tells the control plane it serves: its host report, liveness and strays.

:class:`HostReport` (topology, partition plan, doctor verdict, data-plane
description, wired physical networks) is registered once and again after a
change; :class:`Heartbeat` says the node is alive; :class:`UnknownReport`
lists domains and switch ports no instance explains, and
:class:`UnknownVerdict` is the control plane's answer. This module must not
touch the database or the host.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rtkvm.wire.base import In as _In
from rtkvm.wire.topology import TopologyDoc


class DoctorVerdict(_In):
    verdict: Literal["ready", "not-ready"]
    failed: list[str] = Field(default_factory=list)
    """Ids of failed doctor checks (shown to admins)."""


class DataplaneDoc(BaseModel):
    """What a host's data plane says it offers (``DataPlane.describe()``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str = Field(max_length=32)
    """``ovs-dpdk``, or another backend's name."""
    vif_type: str = Field(max_length=32)
    """What a guest NIC is: ``vhostuser`` (QEMU serves the socket)."""
    networks: list[str] = Field(default_factory=list, max_length=256)
    """The switch's networks (its names; the wiring maps them to physical networks)."""
    pmd_cpus: str = Field(default="", max_length=1024)
    """CPUs of the polling threads."""
    pmd_sched: str = Field(default="", max_length=32)
    """Their scheduling, ``fifo/95``."""
    shared_with_rt_vcpus: bool = False
    """The polling CPUs are also RT vCPU CPUs (a small host): latency suffers."""
    physnets: list[str] = Field(default_factory=list, max_length=256)
    """Physical networks the switch has a bridge for: it carries any network on them."""
    links_down: list[str] = Field(default_factory=list, max_length=256)
    """Of those, the ones whose NIC uplink (one DPDK drives) the switch sees link down."""
    uplinks: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, max_length=256
    )
    """Physical network -> what its uplink is: ``polled: DPDK drives NIC ADDR`` or
    ``polled: DPDK af_packet on IFACE`` (a PMD polls it), or ``kernel port IFACE: not
    polled``."""


Engine = Literal["rtkvm", "openstack"]
"""Who builds a host's guests: rtkvm's own API places them (``rtkvm agent``), or Nova
does and rtkvm keeps the RT state only (``rtkvm openstack agent``)."""
RTKVM_ENGINE: Engine = "rtkvm"
OPENSTACK_ENGINE: Engine = "openstack"


class HostReport(_In):
    """What an agent registers: topology, plan, doctor verdict, data plane, wiring."""

    topology: TopologyDoc
    plan: dict[str, Any]
    """A PartitionPlan as ``rtkvm host plan --format json`` prints it."""
    doctor: DoctorVerdict
    dataplane_state: str = Field(default="unknown", max_length=32)
    """'ready' when the RT switch runs; anything else keeps networked guests away."""
    dataplane: DataplaneDoc | None = None
    """What the switch described when it did ('ready'); None without one or when it is down."""
    physnets: list[str] = Field(default_factory=list)
    """Physical network labels wired to this host."""
    engine: Engine = RTKVM_ENGINE
    """Who builds this host's guests; rtkvm's scheduler places nothing on an 'openstack' host."""
    tuning_drift: list[str] | None = Field(default=None, max_length=64)
    """Settings of rtkvm's last tuning that no longer hold (``rtkvm host verify``); None:
    rtkvm never tuned this host."""
    console_address: str | None = Field(default=None, max_length=300)
    """HOST:PORT where the agent's console relay listens for the API (``rtkvm.wire.console``);
    None: the agent relays no console (an older agent, or an OpenStack node)."""
    disk_gb: int | None = Field(default=None, ge=0, le=10**7)
    """GiB of the filesystem that holds the servers' disks (their copy-on-write overlays);
    None: not reported, and no server with a disk is placed on this host."""


class AgentStats(_In):
    """What an agent counted since it started (exported by the API's /metrics)."""

    uptime_seconds: float = Field(ge=0, le=1e10)
    steps: int = Field(ge=0, le=2**53)
    step_failures: int = Field(ge=0, le=2**53)
    creates: int = Field(ge=0, le=2**53)
    create_failures: int = Field(ge=0, le=2**53)
    deletes: int = Field(ge=0, le=2**53)
    rechecks: int = Field(ge=0, le=2**53)
    """RT checks of running guests whose result changed and was reported."""
    power_tasks: int = Field(default=0, ge=0, le=2**53)
    """Stops, starts and reboots carried out (an older agent sends none)."""
    degraded_guests: int = Field(ge=0, le=100_000)
    """Guests whose last RT check found them degraded."""
    last_step_seconds: float = Field(ge=0, le=1e6)


class Heartbeat(_In):
    dataplane_state: str | None = Field(default=None, max_length=32)
    doctor: DoctorVerdict | None = None
    stats: AgentStats | None = None


class UnknownDomain(_In):
    """An rtkvm domain on the agent's host that no instance of that host explains."""

    name: str = Field(min_length=1, max_length=64)
    uuid: str = Field(min_length=1, max_length=64)
    running: bool


class UnknownPort(_In):
    """A guest port on the agent's switch that no instance of that host explains."""

    guest: str = Field(min_length=1, max_length=32)
    """The port's guest id (an instance id without dashes for the cloud's guests)."""
    nic: int = Field(ge=0, le=31)


class UnknownReport(_In):
    domains: list[UnknownDomain] = Field(default=[], max_length=1000)
    ports: list[UnknownPort] = Field(default=[], max_length=1000)


UnknownKind = Literal["deleted", "other-host", "not-placed", "unknown"]


class UnknownVerdict(BaseModel):
    """What the API knows of an unknown domain's (or port's) instance, and what to do."""

    name: str
    """The domain's name, or the switch port's (``vhu-<guest>-<nic>``)."""
    uuid: str
    running: bool | None
    """Whether the domain runs; None for a port."""
    verdict: UnknownKind
    hint: str
    kind: Literal["domain", "port"] = "domain"
