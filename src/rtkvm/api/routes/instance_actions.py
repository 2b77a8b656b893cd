"""Power actions on an instance: ``POST /v1/instances/{id}/action`` (stop, start, reboot).

The API checks the action against the instance's state (rules in
rtkvm.wire.lifecycle), records it as the instance's task and answers 202;
the host's agent carries it out and reports the result, which clears the
task. An action that is already the instance's state (stop of a stopped
server, start of an active one) or its task under way is a no-op that
answers the same (idempotent, like delete). Refused with 409 and what to do:
another task under way, a measurement holding the instance, a host that is
down, a state the action does not apply to. This module must not touch a
host: only the agent does.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from rtkvm.api.deps import ServicesDep, UserDep
from rtkvm.api.errors import ApiError, not_found
from rtkvm.api.liveness import host_status
from rtkvm.api.routes.measurements import check_idle
from rtkvm.api.views import instance_out, locked_instance
from rtkvm.db.models import Host
from rtkvm.wire.guest import InstanceOut
from rtkvm.wire.lifecycle import InstanceAction, rule_for

router = APIRouter(prefix="/v1/instances", tags=["instances"])


@router.post("/{instance_id}/action", status_code=202)
def act(
    instance_id: str,
    body: InstanceAction,
    services: ServicesDep,
    caller: UserDep,
    response: Response,
) -> InstanceOut:
    """Stop, start or reboot (``hard``: power off at once) a server; its agent does it."""
    rule = rule_for(body.action, body.hard)
    if rule is None:
        raise ApiError(422, f"hard: only reboot has a hard form; {body.action} without hard=true")
    what = f"{body.action}{' --hard' if body.hard else ''}"
    now = services.clock()
    with services.db.write() as s:
        inst = locked_instance(s, instance_id)  # one state change of an instance at a time
        if inst is None or inst.state == "deleted":
            raise not_found("instance", instance_id)
        if not caller.is_admin and inst.project_id != caller.project_id:
            raise not_found("instance", instance_id)
        if inst.task == rule.task or (inst.task is None and inst.state == rule.already):
            response.status_code = 200  # nothing new to do
            return instance_out(s, inst)
        if inst.task is not None:
            raise ApiError(
                409,
                f"server {inst.name} is {inst.task}: wait until it is done "
                f"(`rtkvm cloud server show {inst.id}` shows no task), then {what} it",
            )
        if inst.state not in rule.allowed:
            raise ApiError(409, _refusal(inst.name, inst.state, what, sorted(rule.allowed)))
        host = s.get(Host, inst.host_id) if inst.host_id is not None else None
        status = host_status(host, now, services.settings.agent_timeout_s) if host else "removed"
        if status != "up":
            where = host.name if host else "its host"
            raise ApiError(
                409,
                f"server {inst.name}'s host {where} is {status}: its agent cannot {what} it; "
                "try again when the host is up",
            )
        check_idle(s, inst, None)
        inst.task = rule.task
        inst.updated_at = now
        s.flush()
        return instance_out(s, inst)


def _refusal(name: str, state: str, what: str, allowed: list[str]) -> str:
    hint = {
        "scheduling": "wait until it is active",
        "building": "wait until it is active",
        "deleting": "it is being deleted",
        "error": "see its fault; reboot --hard builds it again, or delete it",
        "stopped": "start it first",
    }.get(state, "")
    return (
        f"server {name} is {state}: {what} applies to a server that is "
        f"{' or '.join(allowed)}" + (f"; {hint}" if hint else "")
    )
