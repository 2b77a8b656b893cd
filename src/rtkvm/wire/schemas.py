"""Request and response bodies of the API (pydantic), shared with the client.

Names follow OpenStack where users know them (flavor ``vcpus``, ``ram``,
``extra_specs``; networks with a physical network label). Responses refer
to projects, users, flavors, networks and hosts by name and to instances by
id. This module must not touch the database.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from rtkvm.wire.base import DB_INT_MAX, Name
from rtkvm.wire.base import In as _In
from rtkvm.wire.images import DISK_GB_MAX
from rtkvm.wire.keypairs import USER_DATA_B64_MAX
from rtkvm.wire.node import RTKVM_ENGINE, DataplaneDoc, Engine, UnknownVerdict
from rtkvm.wire.qualify import HostQualification

BYTES_MAX = 2**62
"""The largest byte count a quota takes (BigInteger columns)."""


class ProjectCreate(_In):
    name: str = Name
    quota_rt_cores: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    quota_instances: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    quota_shared_vcpus: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    quota_image_bytes: int | None = Field(default=None, ge=0, le=BYTES_MAX)


class ProjectOut(BaseModel):
    id: int
    name: str
    quota_rt_cores: int | None
    quota_instances: int | None
    rt_cores_used: int
    instances_used: int
    quota_shared_vcpus: int | None = None
    shared_vcpus_used: int = 0
    """vCPUs on the hosts' shared CPUs (shared guests, mixed guests' non-RT vCPUs)."""
    quota_image_bytes: int | None = None
    """Bytes of active images the project may keep (None: unlimited)."""
    image_bytes_used: int = 0


class QuotaSet(_In):
    """Fields left out keep their value; null means unlimited."""

    rt_cores: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    instances: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    shared_vcpus: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    image_bytes: int | None = Field(default=None, ge=0, le=BYTES_MAX)


class UserCreate(_In):
    name: str = Name
    project: str
    role: Literal["admin", "member"] = "member"


class UserOut(BaseModel):
    id: int
    name: str
    project: str
    role: str


TOKEN_LIFETIME_MAX = 10 * 365 * 86400


class TokenCreate(_In):
    user: str | None = None
    """Whose token; default the caller. Only an admin may name another user."""
    lifetime_s: int | None = Field(default=None, ge=60, le=TOKEN_LIFETIME_MAX)
    """Seconds the token is accepted; default the site's (RTKVM_TOKEN_LIFETIME), or forever."""


class TokenOut(BaseModel):
    id: int
    prefix: str
    kind: str
    user: str | None
    host: str | None
    created_at: float
    expires_at: float | None = None
    """When it stops being accepted (UNIX seconds); None: until revoked."""


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
    memory_4k_mib_total: int = 0
    """RAM guests with 4k pages may take on this node (beside pools and host reserve)."""
    memory_4k_mib_used: int = 0


class HostOut(BaseModel):
    name: str
    status: Literal["up", "down", "enrolled"]
    doctor_verdict: str
    doctor_failed: list[str]
    dataplane_state: str
    dataplane: DataplaneDoc | None = None
    """What the host's switch offers, as it described itself at registration."""
    physnets: list[str]
    heartbeat_at: float | None
    registered_at: float | None
    nodes: list[NodeOut]
    rt_waiver: str | None = None
    """An admin's reason to schedule RT guests here although the doctor verdict is not
    'ready' (a lab host): guests placed here have no latency guarantee. None: no waiver."""
    pcpu_share: int = 1
    """Guests per RT pCPU: 1 (dedicated), more only on a waived lab host."""
    engine: Engine = RTKVM_ENGINE
    tuning_drift: list[str] | None = None
    """Settings of rtkvm's last tuning that no longer hold, as the agent last found them;
    None: rtkvm never tuned this host."""
    console: bool = False
    """The agent relays its servers' interactive consoles (it registered a relay address)."""
    qualified: bool = False
    """A passed qualification holds for the host's plan and wiring as they are now."""
    qualification: HostQualification | None = None
    """Its last qualification (running or finished); None: never qualified."""
    disk_gb_total: int | None = None
    """GiB for its servers' disks, as its agent registered it; None: not reported."""
    disk_gb_used: int = 0
    """GiB its servers' disks may grow to (each server's ``disk_gb``)."""
    """Who builds guests here: an 'openstack' host is Nova's, never scheduled to by
    rtkvm; its guests' RT verdicts are kept (``rtkvm cloud guest list``)."""


class HostPlanOut(BaseModel):
    """What the host's agent last registered: its partition plan and topology."""

    name: str
    engine: Engine
    registered_at: float
    plan: dict[str, Any]
    """A PartitionPlan as ``rtkvm host plan --format json`` prints it."""
    topology: dict[str, Any]


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


class FlavorCreate(_In):
    """Either Nova's (vcpus, ram, extra_specs) or rtkvm's own ``spec``."""

    name: str = Name
    vcpus: int | None = Field(default=None, ge=1, le=4096)
    ram: int | None = Field(default=None, ge=1)
    """MiB, as in Nova."""
    extra_specs: dict[str, str] = Field(default_factory=dict)
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


NetworkName = Annotated[str, Field(min_length=1, max_length=64)]


class NicRequest(_In):
    """One NIC of a new instance: its network and, if the user gives one, its address."""

    network: NetworkName
    address: str | None = Field(default=None, max_length=43)
    """ADDR/PREFIX set on the NIC in the guest; none: the NIC has no address (rtkvm never
    invents one on an unmanaged network)."""


class InstanceCreate(_In):
    name: str = Name
    flavor: str
    networks: list[NetworkName | NicRequest] = Field(default=[], max_length=16)
    """Network names, or ``{network, address}`` for a NIC with the user's address."""
    project: str | None = None
    """Admins only: create in another project."""
    image: str | None = Field(default=None, min_length=1, max_length=64)
    """An image's name or id: the server boots a copy-on-write disk of it. None: rtkvm's
    probe kernel (the RT proof guest)."""
    disk_gb: int | None = Field(default=None, ge=1, le=DISK_GB_MAX)
    """The disk's size in GiB; default the image's virtual size, rounded up."""
    key_name: str | None = Field(default=None, min_length=1, max_length=64)
    """One of the caller's keypairs: its key is authorised for login (an image server)."""
    user_data: str | None = Field(default=None, min_length=1, max_length=USER_DATA_B64_MAX)
    """cloud-init user-data, base64 (at most 65,535 bytes decoded; an image server)."""
    host: str | None = Field(default=None, min_length=1, max_length=64)
    """Admins only: place it on this host or nowhere (every other rule still holds, but a
    required qualification: this is how a host's qualification boots its probes)."""

    def nics(self) -> list[NicRequest]:
        return [n if isinstance(n, NicRequest) else NicRequest(network=n) for n in self.networks]


class UnknownResourceOut(UnknownVerdict):
    """An unknown domain or port as last reported by its host's agent."""

    first_seen: float
    last_seen: float


class UsageOut(BaseModel):
    project: str
    since: float
    until: float
    rt_core_seconds: float
    instance_seconds: float
    rt_cores_in_use: int
    instances_in_use: int
    shared_vcpu_seconds: float = 0.0
    shared_vcpus_in_use: int = 0


class CheckOut(BaseModel):
    """The control plane's invariants as they stand (``GET /check``)."""

    ok: bool
    violations: list[str]
    """One line per broken invariant, naming the rows involved."""
    checked_at: float
