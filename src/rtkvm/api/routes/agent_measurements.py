"""The agent's side of measurements: fetch this host's queued and running ones, report each.

Authenticated by the host's agent token (like rtkvm.api.routes.agent): an
agent sees and moves only its own host's measurements; another host's id is
a 404. Moves: queued -> running (started), running -> done (with the result,
a JSON object of at most 2 MB), queued or running -> error (with a fault);
reporting the current state again is a no-op. A queued or running
measurement whose instance is no longer active is abandoned (error) when its
agent fetches work. Must not run measurements or touch instances.
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from rtkvm.api.deps import AgentDep, ServicesDep
from rtkvm.api.errors import ApiError, ErrorOut, check_move, not_found
from rtkvm.api.views_measure import BUSY_STATES, agent_measurement
from rtkvm.db.models import Instance, Measurement
from rtkvm.wire.measure import AgentMeasurement, MeasurementReport
from rtkvm.wire.uuids import is_uuid

router = APIRouter(prefix="/v1/agent/measurements", tags=["agent"])

MAX_RESULT_BYTES = 2 * 1024 * 1024
"""The largest result (serialized JSON) an agent may report."""

ABANDON_STATES = ("deleting", "deleted", "error")
"""Instance states that end a queued or running measurement of it."""

MOVES = {
    "queued": {"running", "error"},
    "running": {"done", "error"},
    "done": set(),
    "error": set(),
}


@router.get("")
def work(services: ServicesDep, agent: AgentDep) -> list[AgentMeasurement]:
    """This host's queued and running measurements, oldest first (abandoned ones left out)."""
    now = services.clock()
    with services.db.write() as s:
        rows = s.scalars(
            select(Measurement)
            .where(Measurement.host_id == agent.host_id, Measurement.state.in_(BUSY_STATES))
            .order_by(Measurement.created_at, Measurement.id)
        )
        out = []
        for m in list(rows):
            gone = _inactive_instance(s, m)
            if gone is not None:
                m.state = "error"
                m.fault = f"instance {gone.name} ({gone.id}) is {gone.state}: measurement abandoned"
                m.finished_at = now
                continue
            out.append(agent_measurement(s, m))
        return out


@router.post(
    "/{measurement_id}/state",
    responses={413: {"model": ErrorOut, "description": "The result is over 2 MB of JSON"}},
)
def report(
    measurement_id: str, body: MeasurementReport, services: ServicesDep, agent: AgentDep
) -> AgentMeasurement:
    """Move a measurement of this host: running, done (with its result) or error."""
    result_text = None
    if body.state == "done":
        if body.result is None:
            raise ApiError(
                422,
                "result: a done report needs the result (the JSON of `rtkvm guest measure "
                "--save` or `rtkvm net rtt -f json`); report error with a fault if there is none",
            )
        result_text = json.dumps(body.result)
        if len(result_text.encode()) > MAX_RESULT_BYTES:
            raise ApiError(
                413,
                f"result: {len(result_text.encode())} bytes of JSON is over the "
                f"{MAX_RESULT_BYTES} byte limit; leave out raw samples (keep the histogram)",
            )
    now = services.clock()
    with services.db.write() as s:
        m = None
        if is_uuid(measurement_id):
            m = s.get(Measurement, measurement_id.lower(), with_for_update=True)
        if m is None or m.host_id != agent.host_id:
            raise not_found("measurement", measurement_id, " on this host")
        if m.state == body.state:
            return agent_measurement(s, m)
        check_move(f"measurement {m.id}", m.state, body.state, MOVES)
        m.state = body.state
        if body.state == "running":
            m.started_at = now
        elif body.state == "done":
            m.result = result_text
            m.fault = None
            m.finished_at = now
        else:
            m.fault = body.fault or "the agent reported an error without saying why"
            m.finished_at = now
        s.flush()
        return agent_measurement(s, m)


def _inactive_instance(session: Session, m: Measurement) -> Instance | None:
    """The first measured instance that is going away or failed, if any."""
    for ident in (m.instance_id, m.peer_instance_id):
        if ident is None:
            continue
        inst = session.get(Instance, ident)
        if inst is not None and inst.state in ABANDON_STATES:
            return inst
    return None
