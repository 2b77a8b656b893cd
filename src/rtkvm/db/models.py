"""SQLAlchemy 2 models of the control plane: the one shared state.

Tables: projects (with quotas and usage counters), users, API tokens (only
a SHA-256 of the secret is stored), hosts and their NUMA nodes (RT pCPUs,
hugepages, counters of what is claimed), host CPU claims (one row per
(host, pCPU), UNIQUE: the atomic claim), flavors (the RT guest spec),
unmanaged networks, disk images (the store's index), instances with their
networks, and usage records for accounting, measurements (in-guest
cyclictest or round trip between two instances, carried out by the host's
agent) and what agents found on their hosts but the cloud does not know
(unknown domains and switch ports).
Times are UNIX seconds (float) so SQLite and PostgreSQL agree.

This module only declares tables: no queries, no policy. Schema changes go
through an Alembic migration under ``rtkvm/db/migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MEASUREMENT_KINDS = ("cyclictest", "rtt")
MEASUREMENT_STATES = ("queued", "running", "done", "error")
PEER_STATES = ("queued", "running", "serving", "done", "error")
"""The serving half of a round trip across hosts: taken (running), its sockperf server
listening (serving: the client's host may start), then done or error."""
ROLES = ("admin", "member")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    quota_rt_cores: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Dedicated pCPUs the project may hold at once (vCPUs + isolated emulator CPUs)."""
    quota_instances: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quota_shared_vcpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """vCPUs on the hosts' shared CPUs the project may hold at once (shared guests' vCPUs
    and mixed guests' non-RT vCPUs; Nova's VCPU)."""
    rt_cores_used: Mapped[int] = mapped_column(Integer, default=0)
    instances_used: Mapped[int] = mapped_column(Integer, default=0)
    shared_vcpus_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    quota_image_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)
    """Bytes of active images the project may keep in the image store (None: unlimited)."""
    image_bytes_used: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Bytes its active images take: added when an upload activates one, taken away when
    one is deleted (same transaction, the project's row locked)."""
    created_at: Mapped[float] = mapped_column(Float)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)


class Token(Base):
    """An API credential: a user's, or a host agent's (bound to one host)."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    """The first characters of the secret, to tell tokens apart in listings."""
    kind: Mapped[str] = mapped_column(String(8))  # "user" | "agent"
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), nullable=True, index=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    """UNIX seconds after which the token is refused; None: it does not expire."""


class Host(Base):
    __tablename__ = "hosts"
    __table_args__ = (
        # the scheduler's two index-ordered reads (see scheduler.queries)
        Index("ix_hosts_ready_free", "doctor_verdict", "rt_free", "name"),
        Index(
            "ix_hosts_waived_free",
            "rt_free",
            "name",
            sqlite_where=text("rt_waiver IS NOT NULL"),
            postgresql_where=text("rt_waiver IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    enrolled_at: Mapped[float] = mapped_column(Float)
    registered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    doctor_verdict: Mapped[str] = mapped_column(String(16), default="unknown")
    """'ready', 'not-ready' or 'unknown' (never reported)."""
    doctor_failed: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the ids of failed doctor checks."""
    dataplane_state: Mapped[str] = mapped_column(String(32), default="unknown")
    physnets: Mapped[str] = mapped_column(Text, default="[]")
    dataplane: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON of what the host's data plane described (wire.node.DataplaneDoc); None: none."""
    """JSON list of the physical network labels wired to this host."""
    # Capacity summary of the host's nodes, kept in step by every claim and release
    # (same transaction) so that the scheduler's SQL prefilter reads one narrow row.
    rt_free: Mapped[int] = mapped_column(Integer, default=0)
    node_free_max: Mapped[int] = mapped_column(Integer, default=0)
    hp2m_free_max: Mapped[int] = mapped_column(Integer, default=0)
    hp1g_free_max: Mapped[int] = mapped_column(Integer, default=0)
    mem_free_max: Mapped[int] = mapped_column(Integer, default=0)
    """MiB: the most RAM for 4k-page guests free on one of its nodes."""
    rt_waiver: Mapped[str | None] = mapped_column(Text, nullable=True)
    """An admin's written reason to schedule RT guests here although the doctor
    verdict is not 'ready' (a lab host); None: only a ready verdict admits it."""
    pcpu_share: Mapped[int] = mapped_column(Integer, default=1)
    """Guests per RT pCPU: 1 (dedicated) except on a waived lab host whose admin
    lets a few guests share each pCPU for functional tests (never for latency)."""
    engine: Mapped[str] = mapped_column(String(16), default="rtkvm", server_default="rtkvm")
    agent_stats: Mapped[str | None] = mapped_column(Text, nullable=True)
    tuning_drift: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON list of the drifted settings the agent last reported; None: never tuned."""
    console_address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    """HOST:PORT of the agent's console relay, as it last registered; None: it has none."""
    qualified_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    """When its last passed qualification finished, while its plan and wiring are those it
    was qualified with (rtkvm.api.qualify); None: not qualified."""
    qualification_id: Mapped[str | None] = mapped_column(String(36), nullable=True, default=None)
    disk_gb_total: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    """GiB of the filesystem that holds its servers' disks, as its agent last registered;
    None: not reported, so no server with a disk is placed here."""
    disk_gb_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """GiB its placed servers' disks may grow to (their ``disk_gb``), kept in step by every
    claim and release in the same transaction."""
    """JSON of the agent's last heartbeat counters (wire.node.AgentStats); None: none sent."""
    """Who builds guests here (wire.node.Engine): 'rtkvm' (this API places them) or
    'openstack' (Nova does; the API keeps the host's and its guests' RT state only)."""


class HostDetail(Base):
    """The bulky part of a host's report, read only when claiming on that host."""

    __tablename__ = "host_details"

    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), primary_key=True)
    topology: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: cores and NUMA nodes as the agent reported them (see scheduler.hostdata)."""
    plan: Mapped[str] = mapped_column(Text, default="{}")
    """JSON of the host's PartitionPlan."""


class HostNode(Base):
    """One NUMA node of a host: RT pCPUs, hugepages and 4k-page RAM, with claimed counters."""

    __tablename__ = "host_nodes"

    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), primary_key=True)
    node: Mapped[int] = mapped_column(Integer, primary_key=True)
    rt_pcpus: Mapped[str] = mapped_column(Text)
    """Kernel list of this node's CPUs in the plan's rt_vcpu set."""
    rt_total: Mapped[int] = mapped_column(Integer)
    rt_used: Mapped[int] = mapped_column(Integer, default=0)
    hp2m_total: Mapped[int] = mapped_column(Integer, default=0)
    hp2m_used: Mapped[int] = mapped_column(Integer, default=0)
    hp1g_total: Mapped[int] = mapped_column(Integer, default=0)
    hp1g_used: Mapped[int] = mapped_column(Integer, default=0)
    mem_total: Mapped[int] = mapped_column(Integer, default=0)
    """MiB of the node's RAM guests with 4k pages may take (beside pools and reserve)."""
    mem_used: Mapped[int] = mapped_column(Integer, default=0)


class CpuClaim(Base):
    """One pCPU (slot) of one host taken by one instance; the UNIQUE triple is the lock.

    ``slot`` is 0 on every host but a waived lab host with ``pcpu_share`` > 1,
    where slots 0..share-1 of a pCPU go to different instances.
    """

    __tablename__ = "cpu_claims"
    __table_args__ = (
        UniqueConstraint("host_id", "pcpu", "slot", name="uq_cpu_claims_host_pcpu_slot"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"))
    pcpu: Mapped[int] = mapped_column(Integer)
    slot: Mapped[int] = mapped_column(Integer, default=0)
    node: Mapped[int] = mapped_column(Integer)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), index=True)


class Flavor(Base):
    __tablename__ = "flavors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    spec: Mapped[str] = mapped_column(Text)
    """JSON of the RtGuestSpec."""
    extra_specs: Mapped[str] = mapped_column(Text, default="{}")
    """JSON of the Nova extra specs it was made from (empty when given as a spec)."""
    created_at: Mapped[float] = mapped_column(Float)


class Network(Base):
    """An unmanaged L2 network: a physical network label and an optional VLAN."""

    __tablename__ = "networks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(16), unique=True)
    physnet: Mapped[str] = mapped_column(String(16))
    vlan: Mapped[int | None] = mapped_column(Integer, nullable=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id"), nullable=True, index=True
    )
    created_at: Mapped[float] = mapped_column(Float)


class Keypair(Base):
    """A user's SSH public key, by name; a server created with it gets a copy."""

    __tablename__ = "keypairs"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    """One normalised OpenSSH line (rtkvm.seed.keys)."""
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


IMAGE_STATES = ("queued", "saving", "active", "deleted")
"""queued: made, no data yet (or the last upload was refused: see fault); saving: an upload
is arriving; active: inspected and stored, servers may boot it; deleted: its file is gone."""


class Image(Base):
    """A disk image in the API's store: servers boot copy-on-write overlays of it."""

    __tablename__ = "images"
    __table_args__ = (
        Index(
            "uq_images_live_name",
            "project_id",
            "name",
            unique=True,
            sqlite_where=text("status != 'deleted'"),
            postgresql_where=text("status != 'deleted'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    """Every project may boot it (only an admin may share an image)."""
    status: Mapped[str] = mapped_column(String(16))
    """One of IMAGE_STATES."""
    disk_format: Mapped[str | None] = mapped_column(String(8), nullable=True, default=None)
    """raw or qcow2, as qemu-img found it (rtkvm.image.inspect)."""
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)
    virtual_size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    fault: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    """Why the last upload was refused."""
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    flavor_name: Mapped[str] = mapped_column(String(64))
    spec: Mapped[str] = mapped_column(Text)
    """JSON of the flavor's RtGuestSpec at creation (a later flavor change does not move it)."""
    state: Mapped[str] = mapped_column(String(16), index=True)
    """One of rtkvm.wire.lifecycle.INSTANCE_STATES."""
    fault: Mapped[str | None] = mapped_column(Text, nullable=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), nullable=True, index=True)
    task: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """The power action its agent has yet to carry out (rtkvm.wire.lifecycle.Task)."""
    rt_cores: Mapped[int] = mapped_column(Integer, default=0)
    """pCPUs claimed (vCPUs + isolated emulator CPU); 0 when not placed."""
    shared_vcpus: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """vCPUs floating on the host's shared CPUs (counted in the project's quota); 0 when not
    placed. An instance holds resources while rt_cores or shared_vcpus is above 0."""
    placement: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: vcpu_pins [[vcpu, pcpu]...], emulator_cpus, cell_nodes, hugepages per node."""
    rt_waiver: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The host's RT waiver when the instance was placed: its latency is not assured."""
    rt_state: Mapped[str] = mapped_column(
        String(16), default="unverified", server_default="unverified"
    )
    """What its agent last found: 'verified', 'degraded' or 'unverified' (rtkvm.api.rtstate)."""
    rt_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON: the reasons and the host's waived rules of that check."""
    rt_checked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    image_id: Mapped[str | None] = mapped_column(
        ForeignKey("images.id"), nullable=True, index=True, default=None
    )
    """The image its disk is an overlay of; None: it boots rtkvm's probe kernel."""
    disk_gb: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    """Its disk's size in GiB (at least the image's virtual size)."""
    key_name: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    public_key: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    """The keypair's key when the server was created (a later change does not move it)."""
    user_data: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    """Its user's cloud-init user-data, base64 (as in Nova); only servers with an image."""
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class InstanceNetwork(Base):
    __tablename__ = "instance_networks"

    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(43), nullable=True, default=None)
    """ADDR/PREFIX its user gave the NIC (normalised); None: no address."""


class InstanceConsole(Base):
    """The end of an instance's serial console log, as its agent last sent it."""

    __tablename__ = "instance_consoles"

    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), primary_key=True)
    requested_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    taken_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    text: Mapped[str] = mapped_column(Text, default="")
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)


class ConsoleTicket(Base):
    """A one-use pass to one server's interactive console (``rtkvm.wire.console``)."""

    __tablename__ = "console_tickets"

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), index=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"))
    user_id: Mapped[int] = mapped_column(Integer)
    """Who opened the console, for the record (a user may be deleted later)."""
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    redeemed_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)


class UsageRecord(Base):
    """One placed instance's life, for accounting: from claim to release."""

    __tablename__ = "usage_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), index=True)
    rt_cores: Mapped[int] = mapped_column(Integer)
    shared_vcpus: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Measurement(Base):
    """A latency measurement of instances, queued by a user and run by their host's agent."""

    __tablename__ = "measurements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))  # MEASUREMENT_KINDS
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), index=True)
    """cyclictest: the measured instance; rtt: the client."""
    peer_instance_id: Mapped[str | None] = mapped_column(
        ForeignKey("instances.id"), nullable=True, index=True
    )
    """rtt: the server instance."""
    network_id: Mapped[int | None] = mapped_column(ForeignKey("networks.id"), nullable=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    """The host whose agent runs it (rtt: the client's, and the server's when on one host)."""
    peer_host_id: Mapped[int | None] = mapped_column(
        ForeignKey("hosts.id"), nullable=True, index=True, default=None
    )
    """rtt across hosts: the host whose agent serves the peer's half; None: one host."""
    peer_state: Mapped[str | None] = mapped_column(String(16), nullable=True, default=None)
    """rtt across hosts: the serving half's state (PEER_STATES)."""
    peer_result: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    """JSON of what the serving host reported of its half (done)."""
    peer_fault: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    params: Mapped[str] = mapped_column(Text, default="{}")
    """JSON of the kind's parameters."""
    state: Mapped[str] = mapped_column(String(16), index=True)  # MEASUREMENT_STATES
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON of the result the agent reported (done)."""
    fault: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    qualification_id: Mapped[str | None] = mapped_column(
        ForeignKey("qualifications.id"), nullable=True, index=True, default=None
    )
    """The host qualification it was made for (rtkvm.api.qualify); None: a user's own."""


QUALIFICATION_STATES = ("running", "passed", "failed", "abandoned")
"""running: its measurements are being made; passed: every free RT pCPU and wired network
measured, within the limit if one was given; failed: not (see fault); abandoned: left
running for longer than a qualification may take."""


class Qualification(Base):
    """One qualification of one host: what it offered when it began, and the verdict."""

    __tablename__ = "qualifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    user_id: Mapped[int] = mapped_column(Integer)
    """The admin who ran it (a user may be deleted later)."""
    state: Mapped[str] = mapped_column(String(16), index=True)  # QUALIFICATION_STATES
    basis: Mapped[str] = mapped_column(String(64))
    """Digest of the host's plan and wiring when it began: it counts while they match."""
    free_pcpus: Mapped[str] = mapped_column(Text)
    """Kernel list of the RT pCPUs no guest held when it began: each must be measured."""
    held_pcpus: Mapped[str] = mapped_column(Text)
    """Kernel list of the RT pCPUs guests held then (not measured: never disturbed)."""
    networks: Mapped[str] = mapped_column(Text)
    """JSON list of the names of the networks the host was wired to: each gets a round trip."""
    max_latency_us: Mapped[float | None] = mapped_column(Float, nullable=True)
    """The worst cyclictest latency it may show to pass; None: no limit (figures kept)."""
    rt_waiver: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON of the proof (rtkvm.wire.qualify.QualificationProof) once finished."""
    fault: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class UnknownResource(Base):
    """A domain or switch port an agent found on its host that no instance there explains."""

    __tablename__ = "unknown_resources"
    __table_args__ = (
        UniqueConstraint("host_id", "kind", "name", name="uq_unknown_resources_host_kind_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "domain" | "port"
    name: Mapped[str] = mapped_column(String(64))
    uuid: Mapped[str] = mapped_column(String(64))
    running: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    verdict: Mapped[str] = mapped_column(String(16))
    hint: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)


class GuestVerdict(Base):
    """What a node agent found of a guest another engine (Nova) built: the RT verdict.

    A host's agent replaces its whole set each round: a guest that left the host
    (deleted, migrated away) leaves its row too."""

    __tablename__ = "guest_verdicts"
    __table_args__ = (
        UniqueConstraint("host_id", "server_id", name="uq_guest_verdicts_host_server"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    server_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(64))
    flavor: Mapped[str] = mapped_column(String(255))
    verdict: Mapped[str] = mapped_column(String(16))  # wire.rtguest.RtVerdict
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    """JSON of wire.rtguest.GuestVerdictIn without the columns above."""
    first_seen: Mapped[float] = mapped_column(Float)
    checked_at: Mapped[float] = mapped_column(Float)
    changed_at: Mapped[float] = mapped_column(Float)
    """When the verdict or its summary last changed."""


class GuestMeasurement(Base):
    """A latency measurement of a guest another engine built, reported by its host's agent."""

    __tablename__ = "guest_measurements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    server_id: Mapped[str] = mapped_column(String(64), index=True)
    server_name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # wire.measure.MeasurementKind
    result: Mapped[str] = mapped_column(Text)
    """JSON: the shape of ``rtkvm guest measure --save``."""
    measured_at: Mapped[float] = mapped_column(Float)
