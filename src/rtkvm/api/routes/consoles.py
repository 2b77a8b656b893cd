"""A server's console log through the API: a tenant needs no host access to read it.

``POST /v1/instances/{id}/console-log`` asks the server's host agent for the
end of the guest's serial console (202); the agent sees the request in its
work list (``console_wanted``) at its next step and sends the log
(``PUT /v1/agent/instances/{id}/console``); ``GET`` answers what the API
holds, with when it was asked and when it was taken, so a client waits
until ``taken_at >= requested_at``. The text is at most
:data:`rtkvm.wire.guest.CONSOLE_MAX` printable characters, cleaned by the
agent. This module must not read any host file: only the agent does.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from rtkvm.api.deps import AgentDep, ServicesDep, UserDep
from rtkvm.api.errors import ApiError, not_found
from rtkvm.api.views import instance_for, locked_instance
from rtkvm.db.models import Host, InstanceConsole
from rtkvm.wire.guest import ConsoleLogOut, ConsoleUpload
from rtkvm.wire.lifecycle import PLACED_STATES
from rtkvm.wire.node import RTKVM_ENGINE

router = APIRouter(tags=["instances"])


def _out(instance_id: str, row: InstanceConsole | None) -> ConsoleLogOut:
    if row is None:
        return ConsoleLogOut(
            instance=instance_id, requested_at=None, taken_at=None, text="", truncated=False
        )
    return ConsoleLogOut(
        instance=instance_id,
        requested_at=row.requested_at,
        taken_at=row.taken_at,
        text=row.text,
        truncated=row.truncated,
    )


@router.post("/v1/instances/{instance_id}/console-log", status_code=202)
def ask(instance_id: str, services: ServicesDep, caller: UserDep) -> ConsoleLogOut:
    """Ask the server's host agent for its console log (it answers at its next step)."""
    now = services.clock()
    with services.db.write() as s:
        inst = instance_for(s, instance_id, caller)
        if inst.host_id is None or inst.state not in PLACED_STATES:
            raise ApiError(
                409,
                f"server {inst.name} is {inst.state} and on no host: only a server placed on "
                "a host has a console",
            )
        host = s.get(Host, inst.host_id)
        if host is not None and host.engine != RTKVM_ENGINE:
            raise ApiError(409, f"server {inst.name}'s host is not run by rtkvm's agent")
        row = s.get(InstanceConsole, inst.id, with_for_update=True)
        if row is None:
            row = InstanceConsole(instance_id=inst.id, text="", truncated=False)
            s.add(row)
        row.requested_at = now
        s.flush()
        return _out(inst.id, row)


@router.get("/v1/instances/{instance_id}/console-log")
def show(instance_id: str, services: ServicesDep, caller: UserDep) -> ConsoleLogOut:
    """What the API holds of the server's console log (empty before anyone asked)."""
    with services.db.read() as s:
        inst = instance_for(s, instance_id, caller)
        return _out(inst.id, s.get(InstanceConsole, inst.id))


@router.put("/v1/agent/instances/{instance_id}/console", status_code=204)
def take(instance_id: str, body: ConsoleUpload, services: ServicesDep, agent: AgentDep) -> Response:
    """The agent sends the end of the guest's console; kept until the next one."""
    now = services.clock()
    with services.db.write() as s:
        inst = locked_instance(s, instance_id)
        if inst is None or inst.host_id != agent.host_id or inst.state == "deleted":
            raise not_found("instance", instance_id, " on this agent's host")
        row = s.get(InstanceConsole, inst.id, with_for_update=True)
        if row is None:
            row = InstanceConsole(instance_id=inst.id)
            s.add(row)
        row.text, row.truncated, row.taken_at = body.text, body.truncated, now
    return Response(status_code=204)
