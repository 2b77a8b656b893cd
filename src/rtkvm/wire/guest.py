"""The guest as it crosses the wire: an instance's placement, networks, work and state.

:class:`InstanceOut` is what users see of an instance; :class:`AgentInstance`
adds what a node agent needs to build it (the RT guest spec, the typed
placement with floating CPUs and hugepages). :class:`StateReport` is what an
agent reports back. This module must not touch the database or the host.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from rtkvm.wire.base import In as _In
from rtkvm.wire.images import ImageRef
from rtkvm.wire.keypairs import SeedDoc
from rtkvm.wire.lifecycle import Task
from rtkvm.wire.placement import PlacementDoc

ReportedState = Literal["active", "stopped", "error", "deleted"]
"""What a node agent reports of a guest it was asked to build, power or remove."""


class NetworkPort(BaseModel):
    name: str
    physnet: str
    vlan: int | None
    address: str | None = None
    """The NIC's ADDR/PREFIX as its user gave it; None: no address."""


class LastProof(BaseModel):
    measurement: str
    finished_at: float
    worst_us: float
    emulated: bool
    """Measured without KVM (TCG): the figure says nothing of real-time latency."""


class InstanceOut(BaseModel):
    id: str
    name: str
    project: str
    flavor: str
    state: str
    fault: str | None
    host: str | None
    task: Task | None = None
    """A power action under way (rtkvm.wire.lifecycle): 'stopping', 'starting', 'rebooting',
    'rebooting-hard'; None when there is none."""
    rt_cores: int
    vcpu_pins: list[list[int]]
    emulator_cpus: str
    cell_nodes: list[int]
    floating_vcpus: str = ""
    """vCPUs on the host's shared (housekeeping) CPUs: a shared guest's, a mixed one's
    non-RT vCPUs; '' for a dedicated guest."""
    floating_cpus: str = ""
    """The housekeeping CPUs they float on."""
    shared_vcpus: int = 0
    """How many vCPUs it counts against the project's shared-vCPU quota."""
    networks: list[NetworkPort]
    created_at: float
    updated_at: float
    rt_waiver: str | None = None
    """The host's RT waiver when the instance was placed there: its latency is not assured.
    None: placed on an RT-ready host (or not placed)."""
    rt_state: str = "unverified"
    """At a glance (rtkvm.api.rtstate): 'verified' (threads and live domain checked by the
    agent), 'degraded' (with rt_reasons), 'not-assured' (its host is waived) or
    'unverified' (not checked yet)."""
    rt_reasons: list[str] = Field(default_factory=list)
    rt_waived: dict[str, str] = Field(default_factory=dict)
    """Audit rules that failed because of a known host quirk: rule -> quirk."""
    rt_checked_at: float | None = None
    """When the agent last checked the guest."""
    last_proof: LastProof | None = None
    """Its newest finished cyclictest: when, and the worst case; None: never measured."""
    image: str | None = None
    """The name of the image its disk is an overlay of; None: it boots rtkvm's probe."""
    disk_gb: int | None = None
    key_name: str | None = None


class AgentInstance(InstanceOut):
    """What an agent needs to build or tear down a guest."""

    spec: dict[str, Any]
    """The RT guest spec (:class:`rtkvm.domain.spec.RtGuestSpec`) of its flavor."""
    placement: PlacementDoc
    """Where it runs on the agent's host, floating CPUs and hugepages included."""
    console_wanted: bool = False
    """A user asked for its console log since the agent last sent it."""
    image_ref: ImageRef | None = None
    """The image to fetch and make its disk over; None: it boots rtkvm's probe kernel."""
    seed: SeedDoc | None = None
    """What its NoCloud seed says (hostname, keys, user-data): an image server while it is
    being built; None otherwise (the seed is made once, at its first build)."""


CONSOLE_MAX = 65_536
"""The most characters of a guest's console log the agent sends (its end) and the API keeps."""


class ConsoleUpload(_In):
    """The end of a guest's serial console, as its agent read it: printable text only."""

    text: str = Field(max_length=CONSOLE_MAX)
    truncated: bool = False
    """The log was longer: this is its end."""


class ConsoleLogOut(BaseModel):
    """A server's console log as the API holds it: asked at ``requested_at``, sent by its
    host's agent at ``taken_at`` (the log is current once taken_at >= requested_at)."""

    instance: str
    requested_at: float | None
    taken_at: float | None
    text: str
    truncated: bool


class RtCheckDoc(_In):
    """What the agent found when it checked a running guest (rtkvm.guest.rtcheck)."""

    state: Literal["verified", "degraded"]
    reasons: list[str] = Field(default_factory=list, max_length=256)
    waived: dict[str, str] = Field(default_factory=dict, max_length=64)


class StateReport(_In):
    state: ReportedState
    fault: str | None = Field(default=None, max_length=2000)
    rt: RtCheckDoc | None = None
    """With 'active': the guest's RT check, when the agent made one."""
    done: Task | None = None
    """The power task this report finishes (the API clears it when it is still the one)."""
