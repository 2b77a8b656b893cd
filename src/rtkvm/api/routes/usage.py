"""Usage for accounting: RT core-seconds and instance-seconds per project over a window,
from the usage records the scheduler opens and release closes. Must not change anything."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from rtkvm.api.deps import ServicesDep, UserDep
from rtkvm.api.errors import ApiError, not_found
from rtkvm.api.views import project_named
from rtkvm.db.models import UsageRecord
from rtkvm.wire import schemas

router = APIRouter(prefix="/v1/usage", tags=["usage"])


@router.get("/{project}")
def project_usage(
    project: str,
    services: ServicesDep,
    caller: UserDep,
    since: float = Query(default=0.0, ge=0, allow_inf_nan=False, description="UNIX seconds"),
    until: float | None = Query(
        default=None, allow_inf_nan=False, description="UNIX seconds; default now"
    ),
) -> schemas.UsageOut:
    end = services.clock() if until is None else until
    if end < since:
        raise ApiError(422, f"until ({end}) is before since ({since}): swap them")
    with services.db.read() as s:
        proj = project_named(s, project)
        if not caller.is_admin and proj.id != caller.project_id:
            raise not_found("project", project)
        rows = s.execute(
            select(
                UsageRecord.rt_cores,
                UsageRecord.shared_vcpus,
                UsageRecord.started_at,
                UsageRecord.ended_at,
            ).where(
                UsageRecord.project_id == proj.id,
                UsageRecord.started_at < end,
                (UsageRecord.ended_at.is_(None)) | (UsageRecord.ended_at > since),
            )
        )
        cores = 0.0
        vcpus = 0.0
        seconds = 0.0
        for rt_cores, shared, started, ended in rows:
            span = max(0.0, min(end, ended if ended is not None else end) - max(since, started))
            cores += span * rt_cores
            vcpus += span * shared
            seconds += span
        return schemas.UsageOut(
            project=proj.name,
            since=since,
            until=end,
            rt_core_seconds=cores,
            instance_seconds=seconds,
            rt_cores_in_use=proj.rt_cores_used,
            instances_in_use=proj.instances_used,
            shared_vcpu_seconds=vcpus,
            shared_vcpus_in_use=proj.shared_vcpus_used,
        )
