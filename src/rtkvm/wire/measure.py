"""Bodies of the measurements API: latency proof of instances, run by their host's agent.

A user asks for a measurement of its instances: ``cyclictest`` in one
instance, or ``rtt`` (sockperf ping-pong round trip) from one instance to
another over a network they share. The host's agent carries it out (it
boots the guest afresh with the measurement on its command line, as
``rtkvm guest measure`` and ``rtkvm net rtt`` do, then starts it again)
and reports the result: the same JSON as ``rtkvm guest measure --save``
(cyclictest) or ``rtkvm net rtt -f json`` (rtt). This module must not touch
the database.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from rtkvm.net.rtt import DEFAULT_BUCKET_US, DEFAULT_MPS, DEFAULT_SECONDS
from rtkvm.wire.base import In as _In
from rtkvm.wire.guest import AgentInstance

MeasurementKind = Literal["cyclictest", "rtt"]
MeasurementState = Literal["queued", "running", "done", "error"]
PeerState = Literal["queued", "running", "serving", "done", "error"]
"""The serving half of a round trip across hosts (rtkvm.db.models.PEER_STATES)."""
MeasurementRole = Literal["both", "client", "serve"]

DEFAULT_CLIENT_ADDRESS = "169.254.77.1/24"
DEFAULT_SERVER_ADDRESS = "169.254.77.2/24"
"""Link-local addresses for the run: unmanaged networks have no IP plan of their own."""


class CyclictestParamsIn(_In):
    """cyclictest in the guest (microseconds): one thread per RT vCPU."""

    loops: int = Field(default=3000, ge=100, le=10_000_000)
    interval_us: int = Field(default=1000, ge=50, le=1_000_000)
    buckets: int = Field(default=2000, ge=10, le=100_000)
    """Histogram size in µs buckets; a larger latency overflows (max still exact)."""
    priority: int = Field(default=90, ge=1, le=99)
    """cyclictest's SCHED_FIFO priority inside the guest."""


class RttParamsIn(_In):
    """sockperf ping-pong from the client instance's first NIC to the server's."""

    seconds: int = Field(default=DEFAULT_SECONDS, ge=1, le=3600)
    mps: int = Field(default=DEFAULT_MPS, ge=1, le=1_000_000)
    """Messages per second."""
    bucket_us: float = Field(default=DEFAULT_BUCKET_US, gt=0, le=1_000_000)
    client_address: str = Field(default=DEFAULT_CLIENT_ADDRESS, max_length=43)
    """ADDR/PREFIX the client's eth0 gets for the run (no DHCP on unmanaged networks); a
    server on its tenant's image keeps the address its user gave, never another."""
    server_address: str = Field(default=DEFAULT_SERVER_ADDRESS, max_length=43)


class MeasurementCreate(_In):
    kind: MeasurementKind
    server: str = Field(min_length=1, max_length=64)
    """Instance id (or name, when unique in the project): cyclictest's guest, rtt's client."""
    peer: str | None = Field(default=None, min_length=1, max_length=64)
    """rtt only: the instance that answers (sockperf server)."""
    network: str | None = Field(default=None, min_length=1, max_length=64)
    """rtt only: the network both use (default: the client's first network)."""
    cyclictest: CyclictestParamsIn | None = None
    """cyclictest only (defaults when omitted)."""
    rtt: RttParamsIn | None = None
    """rtt only (defaults when omitted)."""
    qualification: str | None = Field(default=None, min_length=1, max_length=36)
    """Admins only: the running host qualification it is made for (its probe servers)."""


class MeasurementOut(BaseModel):
    id: str
    kind: MeasurementKind
    state: MeasurementState
    project: str
    server: str
    """Instance id (cyclictest's guest, rtt's client)."""
    server_name: str
    peer: str | None
    peer_name: str | None
    network: str | None
    host: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    fault: str | None
    rt_waiver: str | None
    """Set when a measured instance sits on a waived host: the figures assure nothing."""
    created_at: float
    started_at: float | None
    finished_at: float | None
    qualification: str | None = None
    """The host qualification it was made for; None: a user's own measurement."""
    peer_host: str | None = None
    """rtt across hosts: the peer's host, whose agent serves; None: ``host`` runs both."""
    peer_state: PeerState | None = None
    """rtt across hosts: the serving half's state."""
    peer_result: dict[str, Any] | None = None
    """rtt across hosts: what the serving host reported of its half (the server guest's
    vCPUs and uptimes, its warnings)."""
    peer_fault: str | None = None


class AgentMeasurement(BaseModel):
    """A measurement for an agent to run on its host."""

    id: str
    kind: MeasurementKind
    state: MeasurementState
    params: dict[str, Any]
    server: AgentInstance
    peer: AgentInstance | None
    network: str | None
    role: MeasurementRole = "both"
    """both: this host runs all of it; rtt across hosts, client: this host runs the client
    (offered once the peer serves), serve: this host runs the peer's sockperf server until
    the client's half ends. ``state`` is this host's half's: queued or running."""
    partner_state: PeerState | None = None
    """rtt across hosts: the other half's state (the client's for serve, the peer's for
    client)."""


class MeasurementReport(_In):
    """What an agent says of a measurement: it started, it finished, or it failed; the
    serving half of an rtt across hosts also says when its server listens (serving)."""

    state: Literal["running", "serving", "done", "error"]
    result: dict[str, Any] | None = None
    fault: str | None = Field(default=None, max_length=2000)
