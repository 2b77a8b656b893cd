"""The agent's side of measurements: fetch this host's queued and running ones, report each.

Authenticated by the host's agent token (like rtkvm.api.routes.agent): an
agent sees and moves only its own host's measurements; another host's id is
a 404. Moves: queued -> running (started), running -> done (with the result,
a JSON object of at most 2 MB), queued or running -> error (with a fault);
reporting the current state again is a no-op. A queued or running
measurement whose instance is no longer active is abandoned (error) when its
agent fetches work.

A round trip across hosts has two halves, each moved by its own host's agent
(``role`` in what an agent fetches). The peer's host serves: queued ->
running -> serving (its sockperf server listens) -> done or error, in
``peer_state``. The client's host is offered its half only once the peer
serves, and moves ``state`` as above. The server is offered until the
client's half ended (``partner_state``), so it knows when to stop. A serving
half that fails before the client started fails the measurement; a client
half that ends before the server started closes the serving half.

Must not run measurements or touch instances.
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from rtkvm.api.deps import AgentDep, ServicesDep
from rtkvm.api.errors import ApiError, ErrorOut, check_move, not_found
from rtkvm.api.views_measure import BUSY_STATES, agent_measurement, role_of
from rtkvm.db.models import Host, Instance, Measurement
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
PEER_MOVES = {
    "queued": {"running", "error"},
    "running": {"serving", "error"},
    "serving": {"done", "error"},
    "done": set(),
    "error": set(),
}
"""The serving half of a round trip across hosts (``peer_state``)."""
PEER_BUSY = ("queued", "running", "serving")
NOT_SERVED = "not started: the client's half ended first"


def close_serving(m: Measurement) -> None:
    """The client's half ended: a serving half that never started never will."""
    if m.peer_state == "queued":
        m.peer_state = "error"
        m.peer_fault = NOT_SERVED


@router.get("")
def work(services: ServicesDep, agent: AgentDep) -> list[AgentMeasurement]:
    """This host's queued and running measurements, oldest first (abandoned ones left out):
    its own, the client halves whose peer serves, and the halves it serves until their
    client's half ended."""
    now = services.clock()
    me = agent.host_id
    if me is None:  # a host that has not registered has no measurements
        return []
    with services.db.write() as s:
        rows = s.scalars(
            select(Measurement)
            .where(
                or_(
                    and_(Measurement.host_id == me, Measurement.state.in_(BUSY_STATES)),
                    and_(Measurement.peer_host_id == me, Measurement.peer_state.in_(PEER_BUSY)),
                )
            )
            .order_by(Measurement.created_at, Measurement.id)
        )
        out = []
        for m in list(rows):
            role = role_of(m, me)
            if m.state in BUSY_STATES:
                gone = _inactive_instance(s, m)
                if gone is not None:
                    m.state = "error"
                    m.fault = (
                        f"instance {gone.name} ({gone.id}) is {gone.state}: measurement abandoned"
                    )
                    m.finished_at = now
                    close_serving(m)
                    if role != "serve" or m.peer_state not in PEER_BUSY:
                        continue
            if role == "client" and m.state == "queued" and m.peer_state != "serving":
                continue  # offered once the peer's host serves
            if role == "serve" and m.state not in BUSY_STATES:
                close_serving(m)  # nothing to serve for a client that has ended
            if role == "serve" and m.peer_state not in PEER_BUSY:
                continue
            out.append(agent_measurement(s, m, role))
        return out


@router.post(
    "/{measurement_id}/state",
    responses={413: {"model": ErrorOut, "description": "The result is over 2 MB of JSON"}},
)
def report(
    measurement_id: str, body: MeasurementReport, services: ServicesDep, agent: AgentDep
) -> AgentMeasurement:
    """Move a measurement of this host: running, done (with its result) or error; the
    serving half of an rtt across hosts also serving."""
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
        if m is None or agent.host_id is None or agent.host_id not in (m.host_id, m.peer_host_id):
            raise not_found("measurement", measurement_id, " on this host")
        role = role_of(m, agent.host_id)
        if role == "serve":
            _move_serving(s, m, body, result_text, now)
            s.flush()
            return agent_measurement(s, m, role)
        if m.state == body.state:
            return agent_measurement(s, m, role)
        check_move(f"measurement {m.id}", m.state, body.state, MOVES)
        if role == "client" and body.state == "running" and m.peer_state != "serving":
            raise ApiError(
                409,
                f"measurement {m.id}: the peer's host does not serve yet (its half is "
                f"{m.peer_state}): the client's half starts once it serves",
            )
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
        if body.state in ("done", "error"):
            close_serving(m)
        s.flush()
        return agent_measurement(s, m, role)


def _move_serving(
    session: Session, m: Measurement, body: MeasurementReport, result: str | None, now: float
) -> None:
    """The serving half moves; its failure before the client started fails the whole."""
    assert m.peer_state is not None
    if m.peer_state == body.state:
        return
    check_move(f"the serving half of measurement {m.id}", m.peer_state, body.state, PEER_MOVES)
    m.peer_state = body.state
    if body.state == "done":
        m.peer_result = result
        m.peer_fault = None
    elif body.state == "error":
        m.peer_fault = body.fault or "the agent reported an error without saying why"
        if m.state == "queued":
            host = session.get(Host, m.peer_host_id)
            m.state = "error"
            m.fault = (
                f"the peer's host {host.name if host else '?'} could not serve: {m.peer_fault}"
            )
            m.finished_at = now


def _inactive_instance(session: Session, m: Measurement) -> Instance | None:
    """The first measured instance that is going away or failed, if any."""
    for ident in (m.instance_id, m.peer_instance_id):
        if ident is None:
            continue
        inst = session.get(Instance, ident)
        if inst is not None and inst.state in ABANDON_STATES:
            return inst
    return None
