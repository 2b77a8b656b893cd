"""The typed client of rtkvm's API for a node agent: the agent's URLs, the node's contract.

:class:`AgentClient` speaks for one host with that host's agent token. It is
rtkvm's implementation of the node ports
(:class:`rtkvm.agent.port.ControlPlane`, and :class:`rtkvm.agent.port.RtLedger`
for an agent whose guests Nova builds): the agent calls it through that
protocol and knows nothing of HTTP, paths or status codes. A heartbeat from
a host the API no longer knows raises :class:`NotRegisteredError`; an API
without measurements answers ``None`` to :meth:`AgentClient.measurements`.
This module must not decide anything the agent decides.
"""

from __future__ import annotations

from pathlib import Path

from rtkvm.errors import CloudError, NotRegisteredError
from rtkvm.wire.console import ConsoleTicketIn, ConsoleTicketOut
from rtkvm.wire.guest import AgentInstance, ConsoleUpload, NetworkPort, StateReport
from rtkvm.wire.http import Http
from rtkvm.wire.measure import AgentMeasurement, MeasurementReport
from rtkvm.wire.node import Heartbeat, HostReport, UnknownReport, UnknownVerdict
from rtkvm.wire.rtguest import (
    GuestMeasurementIn,
    GuestMeasurementOut,
    GuestVerdictOut,
    GuestVerdictReport,
)
from rtkvm.wire.schemas import HostOut

NOT_REGISTERED = 409
NOT_FOUND = 404


class AgentClient(Http):
    """rtkvm's API as one host's agent sees it."""

    def register(self, report: HostReport) -> HostOut:
        answer = self.call("PUT", "/agent/host", json=report.model_dump(mode="json"))
        return HostOut.model_validate(answer)

    def heartbeat(self, beat: Heartbeat) -> HostOut:
        body = beat.model_dump(mode="json", exclude_none=True)
        try:
            return HostOut.model_validate(self.call("POST", "/agent/heartbeat", json=body))
        except CloudError as exc:
            if exc.status == NOT_REGISTERED:
                raise NotRegisteredError(str(exc), exc.status) from None
            raise

    def networks(self) -> list[NetworkPort]:
        return [NetworkPort.model_validate(row) for row in self.call("GET", "/agent/networks")]

    def instances(self) -> list[AgentInstance]:
        return [AgentInstance.model_validate(row) for row in self.call("GET", "/agent/instances")]

    def report_state(self, instance_id: str, report: StateReport) -> AgentInstance:
        path = f"/agent/instances/{instance_id}/state"
        return AgentInstance.model_validate(self.call("POST", path, json=report.model_dump()))

    def report_console(self, instance_id: str, upload: ConsoleUpload) -> None:
        self.call("PUT", f"/agent/instances/{instance_id}/console", json=upload.model_dump())

    def redeem_console(self, ticket: str) -> ConsoleTicketOut:
        """The server a console ticket opens (once; refused when used, expired or not ours)."""
        body = ConsoleTicketIn(ticket=ticket).model_dump()
        return ConsoleTicketOut.model_validate(
            self.call("POST", "/agent/console-tickets/redeem", json=body)
        )

    def fetch_image(self, image_id: str, dest: Path) -> None:
        """The data of an image a server on this host boots, into ``dest``."""
        self.receive_file(f"/agent/images/{image_id}/file", dest)

    def report_unknown(self, report: UnknownReport) -> list[UnknownVerdict]:
        rows = self.call("POST", "/agent/unknown", json=report.model_dump())
        return [UnknownVerdict.model_validate(row) for row in rows]

    def measurements(self) -> list[AgentMeasurement] | None:
        """This host's queued and running measurements; None: the API has none."""
        try:
            rows = self.call("GET", "/agent/measurements")
        except CloudError as exc:
            if exc.status == NOT_FOUND:
                return None
            raise
        return [AgentMeasurement.model_validate(row) for row in rows]

    def report_measurement(self, measurement_id: str, report: MeasurementReport) -> None:
        path = f"/agent/measurements/{measurement_id}/state"
        self.call("POST", path, json=report.model_dump(mode="json"))

    def report_guests(self, report: GuestVerdictReport) -> list[GuestVerdictOut]:
        rows = self.call("PUT", "/agent/guests/verdicts", json=report.model_dump(mode="json"))
        return [GuestVerdictOut.model_validate(row) for row in rows]

    def report_guest_measurement(self, measurement: GuestMeasurementIn) -> GuestMeasurementOut:
        body = measurement.model_dump(mode="json")
        return GuestMeasurementOut.model_validate(
            self.call("POST", "/agent/guests/measurements", json=body)
        )
