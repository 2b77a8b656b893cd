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
from rtkvm.wire.placement import PlacementDoc

ReportedState = Literal["active", "error", "deleted"]
"""What a node agent reports of a guest it was asked to build or remove."""


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
    """The RT guest spec (:class:`rtkvm.domain.spec.RtGuestSpec`) of its flavor."""
    placement: PlacementDoc
    """Where it runs on the agent's host, floating CPUs and hugepages included."""


class StateReport(_In):
    state: ReportedState
    fault: str | None = Field(default=None, max_length=2000)
