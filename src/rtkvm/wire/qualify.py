"""Bodies of the host qualification API: a per-host proof on its free RT pCPUs and networks.

An admin qualifies a host (``rtkvm cloud host qualify``): the API records
what the host offers when it begins (the RT pCPUs no guest holds, the
networks it is wired to), the admin's client boots rtkvm's probe servers on
it and has them measured (cyclictest on every free RT pCPU, a round trip on
every network), each measurement made *for* the qualification, and the API
draws the verdict from those measurements itself. This module must not
touch the database.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from rtkvm.wire.base import In as _In

QualificationState = Literal["running", "passed", "failed", "abandoned"]

MAX_LATENCY_US_MAX = 1_000_000.0


class QualificationCreate(_In):
    max_latency_us: float | None = Field(default=None, gt=0, le=MAX_LATENCY_US_MAX)
    """The worst cyclictest latency (µs) a pCPU may show for the host to pass; None: no
    limit, the proof records the figures and passes when everything was measured."""


class PcpuProof(BaseModel):
    """One free RT pCPU: the worst latency of the cyclictest thread that ran on it."""

    pcpu: int
    worst_us: float | None
    """None: no finished cyclictest ran on it."""
    samples: int = 0
    measurement: str | None = None
    server: str | None = None


class NetworkProof(BaseModel):
    """One wired network: the round trip between two probe servers on it."""

    network: str
    samples: int = 0
    p99_us: float | None = None
    p99_99_us: float | None = None
    max_us: float | None = None
    """None: no finished round trip on it."""
    measurement: str | None = None


class QualificationProof(BaseModel):
    """What the API found in the qualification's own measurements."""

    pcpus: list[PcpuProof]
    networks: list[NetworkProof]
    worst_us: float | None
    """The worst over every pCPU; None: none measured."""
    emulated: bool
    """A measurement ran without KVM (TCG): its figures say nothing of real time."""
    reasons: list[str] = []
    """Why it did not pass (empty when it passed)."""


class QualificationOut(BaseModel):
    id: str
    host: str
    state: QualificationState
    started_at: float
    finished_at: float | None
    free_pcpus: str
    """The RT pCPUs no guest held when it began (each is measured)."""
    held_pcpus: str
    """The RT pCPUs guests held then: not measured, never disturbed."""
    networks: list[str]
    max_latency_us: float | None
    rt_waiver: str | None
    """The host's RT waiver when it began: not RT-ready, the figures assure nothing."""
    current: bool
    """It is the host's qualification now (passed, and the host's plan and wiring are the
    ones it was measured with)."""
    measurements: list[str]
    proof: QualificationProof | None
    fault: str | None


class HostQualification(BaseModel):
    """The host's last qualification, as hosts are listed."""

    id: str
    state: QualificationState
    finished_at: float | None
    worst_us: float | None
    emulated: bool
    current: bool
