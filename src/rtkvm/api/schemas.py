"""Request and response bodies of the API (pydantic), shared with the client.

Names follow OpenStack where users know them (flavor ``vcpus``, ``ram``,
``extra_specs``; networks with a physical network label). Responses refer
to projects, users, flavors, networks and hosts by name and to instances by
id. This module must not touch the database.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rtkvm.scheduler.hostdata import TopologyDoc

DB_INT_MAX = 2**31 - 1
"""The largest integer a column holds (PostgreSQL's integer; SQLite refuses past 2**63 - 1)."""

Name = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectCreate(_In):
    name: str = Name
    quota_rt_cores: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    quota_instances: int | None = Field(default=None, ge=0, le=DB_INT_MAX)


class ProjectOut(BaseModel):
    id: int
    name: str
    quota_rt_cores: int | None
    quota_instances: int | None
    rt_cores_used: int
    instances_used: int


class QuotaSet(_In):
    """Fields left out keep their value; null means unlimited."""

    rt_cores: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    instances: int | None = Field(default=None, ge=0, le=DB_INT_MAX)


class UserCreate(_In):
    name: str = Name
    project: str
    role: Literal["admin", "member"] = "member"


class UserOut(BaseModel):
    id: int
    name: str
    project: str
    role: str


class TokenCreate(_In):
    user: str | None = None
    """Whose token; default the caller. Only an admin may name another user."""


class TokenOut(BaseModel):
    id: int
    prefix: str
    kind: str
    user: str | None
    host: str | None
    created_at: float


class TokenCreated(TokenOut):
    secret: str
    """Shown once; only its hash is stored."""


class NodeOut(BaseModel):
    node: int
    rt_pcpus: str
    rt_total: int
    rt_used: int
    hugepages_2m_total: int
    hugepages_2m_used: int
    hugepages_1g_total: int
    hugepages_1g_used: int


class HostOut(BaseModel):
    name: str
    status: Literal["up", "down", "enrolled"]
    doctor_verdict: str
    doctor_failed: list[str]
    dataplane_state: str
    physnets: list[str]
    heartbeat_at: float | None
    registered_at: float | None
    nodes: list[NodeOut]
    rt_waiver: str | None = None
    """An admin's reason to schedule RT guests here although the doctor verdict is not
    'ready' (a lab host): guests placed here have no latency guarantee. None: no waiver."""
    pcpu_share: int = 1
    """Guests per RT pCPU: 1 (dedicated), more only on a waived lab host."""


RT_WAIVER_MAX = 500


PCPU_SHARE_MAX = 8


class HostUpdate(_In):
    """What an admin may change on a host: its RT waiver (a reason, or null to clear it)
    and, on a waived host only, how many guests may share each RT pCPU."""

    rt_waiver: str | None = Field(default=None, max_length=RT_WAIVER_MAX)
    """Why RT guests may be placed here although the host is not RT-ready; null clears it.
    Omitted: unchanged."""
    pcpu_share: int | None = Field(default=None, ge=1, le=PCPU_SHARE_MAX)
    """Guests per RT pCPU. 1: dedicated (every RT-ready host). More: a lab host under an
    RT waiver whose few pCPUs several guests share for functional tests (never for
    latency). Omitted: unchanged; clearing the waiver sets it back to 1."""

    @field_validator("rt_waiver")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError(
                "an RT waiver needs a reason: give the text saying why this host may run RT "
                "guests without being RT-ready (e.g. 'lab demo on a laptop'), or null to clear it"
            )
        return value.strip()


class HostEnroll(_In):
    name: str = Name


class HostEnrolled(BaseModel):
    host: HostOut
    agent_token: str
    """The agent's credential; shown once. It can only report for this host."""


class DoctorVerdict(_In):
    verdict: Literal["ready", "not-ready"]
    failed: list[str] = []
    """Ids of failed doctor checks (shown to admins)."""


class HostReport(_In):
    """What an agent registers: topology, plan, doctor verdict, data plane, wiring."""

    topology: TopologyDoc
    plan: dict[str, Any]
    """A PartitionPlan as ``rtkvm host plan --format json`` prints it."""
    doctor: DoctorVerdict
    dataplane_state: str = Field(default="unknown", max_length=32)
    """'ready' when the RT switch runs; anything else keeps networked guests away."""
    physnets: list[str] = []
    """Physical network labels wired to this host."""


class Heartbeat(_In):
    dataplane_state: str | None = Field(default=None, max_length=32)
    doctor: DoctorVerdict | None = None


class FlavorCreate(_In):
    """Either Nova's (vcpus, ram, extra_specs) or rtkvm's own ``spec``."""

    name: str = Name
    vcpus: int | None = Field(default=None, ge=1, le=4096)
    ram: int | None = Field(default=None, ge=1)
    """MiB, as in Nova."""
    extra_specs: dict[str, str] = {}
    spec: dict[str, Any] | None = None


class FlavorOut(BaseModel):
    name: str
    vcpus: int
    ram: int
    rt_vcpus: str
    emulator_threads_policy: str | None
    page_size: str
    rt_cores: int
    """Dedicated pCPUs one instance claims: its dedicated vCPUs (all of them, or the RT
    ones of a mixed flavor) plus an isolated emulator CPU."""
    numa_nodes: int
    extra_specs: dict[str, str]
    spec: dict[str, Any]


class NetworkCreate(_In):
    name: str
    physnet: str
    vlan: int | None = None
    shared: bool = False
    project: str | None = None
    """Owner of a private network; default the caller's project."""


class NetworkOut(BaseModel):
    name: str
    physnet: str
    vlan: int | None
    shared: bool
    project: str | None


class InstanceCreate(_In):
    name: str = Name
    flavor: str
    networks: list[str] = Field(default=[], max_length=16)
    project: str | None = None
    """Admins only: create in another project."""


class NetworkPort(BaseModel):
    name: str
    physnet: str
    vlan: int | None


class InstanceOut(BaseModel):
    id: str
    name: str
    project: str
    flavor: str
    state: str
    fault: str | None
    host: str | None
    rt_cores: int
    vcpu_pins: list[list[int]]
    emulator_cpus: str
    cell_nodes: list[int]
    networks: list[NetworkPort]
    created_at: float
    updated_at: float
    rt_waiver: str | None = None
    """The host's RT waiver when the instance was placed there: its latency is not assured.
    None: placed on an RT-ready host (or not placed)."""


class AgentInstance(InstanceOut):
    """What an agent needs to build or tear down a guest."""

    spec: dict[str, Any]
    hugepages: dict[str, int]
    isolated_emulator_cpu: int | None = None
    """The extra pCPU of hw:emulator_threads_policy=isolate (also in emulator_cpus)."""


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


class UnknownResourceOut(UnknownVerdict):
    """An unknown domain or port as last reported by its host's agent."""

    first_seen: float
    last_seen: float


class StateReport(_In):
    state: Literal["active", "error", "deleted"]
    fault: str | None = Field(default=None, max_length=2000)


class UsageOut(BaseModel):
    project: str
    since: float
    until: float
    rt_core_seconds: float
    instance_seconds: float
    rt_cores_in_use: int
    instances_in_use: int
