"""The node's port to the control plane it serves: what the agent needs, whoever schedules.

A node agent registers its host, says it is alive, fetches the guests it must
build or remove, reports their state and the strays it found, and carries out
measurements. :class:`ControlPlane` is that contract, in the manner of
os-vif's describe/plug/unplug: small, typed with :mod:`rtkvm.wire`, and
engine-independent. rtkvm's own API implements it
(:class:`rtkvm.wire.agent_client.AgentClient`); an OpenStack engine (guests
that Nova built, the host's readiness in Placement) implements it too.

Errors: an implementation raises :class:`~rtkvm.errors.CloudError`
(``transient`` worth retrying, ``unauthorized`` fatal) and
:class:`~rtkvm.errors.NotRegisteredError` from a heartbeat the
control plane cannot place. This module must hold no implementation.
"""

from __future__ import annotations

from typing import Protocol

from rtkvm.wire.guest import AgentInstance, ConsoleUpload, NetworkPort, StateReport
from rtkvm.wire.measure import AgentMeasurement, MeasurementReport
from rtkvm.wire.node import Heartbeat, HostReport, UnknownReport, UnknownVerdict
from rtkvm.wire.rtguest import (
    GuestMeasurementIn,
    GuestMeasurementOut,
    GuestVerdictOut,
    GuestVerdictReport,
)
from rtkvm.wire.schemas import HostOut


class ControlPlane(Protocol):
    """What a node agent asks of the control plane it serves."""

    def register(self, report: HostReport) -> HostOut:
        """Publish (again) what this host is: topology, plan, readiness, data plane, wiring."""
        ...

    def heartbeat(self, beat: Heartbeat) -> HostOut:
        """Alive, with what changed; NotRegisteredError: register again."""
        ...

    def instances(self) -> list[AgentInstance]:
        """This host's guests, with the work asked of it (``building``, ``deleting``)."""
        ...

    def networks(self) -> list[NetworkPort]:
        """The control plane's networks on the physical networks this host offers."""
        ...

    def report_state(self, instance_id: str, report: StateReport) -> AgentInstance:
        """What became of a guest: active, error (with the fault) or deleted."""
        ...

    def report_console(self, instance_id: str, upload: ConsoleUpload) -> None:
        """The end of a guest's serial console, which a user asked for (``console_wanted``)."""
        ...

    def report_unknown(self, report: UnknownReport) -> list[UnknownVerdict]:
        """Domains and switch ports no guest explains; the control plane says what it knows."""
        ...

    def measurements(self) -> list[AgentMeasurement] | None:
        """This host's queued and running measurements; None: the control plane has none."""
        ...

    def report_measurement(self, measurement_id: str, report: MeasurementReport) -> None:
        """A measurement started (``running``), finished (``done``) or failed (``error``)."""
        ...


class RtLedger(Protocol):
    """What a node agent whose guests another engine (Nova) builds asks of rtkvm's API.

    The host registers with ``engine='openstack'``: the API keeps its doctor
    verdict, plan, wiring and its guests' RT verdicts and measurements, and
    never places anything there."""

    def register(self, report: HostReport) -> HostOut:
        """Publish (again) what this host is; the report says which engine builds guests."""
        ...

    def heartbeat(self, beat: Heartbeat) -> HostOut:
        """Alive, with what changed; NotRegisteredError: register again."""
        ...

    def report_guests(self, report: GuestVerdictReport) -> list[GuestVerdictOut]:
        """This round's verdicts of all the host's guests: the API's set becomes this."""
        ...

    def report_guest_measurement(self, measurement: GuestMeasurementIn) -> GuestMeasurementOut:
        """A measurement the agent ran in one of its guests."""
        ...
