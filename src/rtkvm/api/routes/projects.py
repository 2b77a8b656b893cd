"""Projects and their quotas. Admins create, list, delete and set quotas; a member
sees its own project. Must not schedule anything."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rtkvm.api.deps import AdminDep, ServicesDep, UserDep
from rtkvm.api.errors import ApiError, conflict, not_found
from rtkvm.api.views import project_out
from rtkvm.db.models import Instance, Network, Project, User
from rtkvm.wire import schemas

router = APIRouter(prefix="/v1/projects", tags=["projects"])


@router.post("", status_code=201)
def create_project(
    body: schemas.ProjectCreate, services: ServicesDep, _: AdminDep
) -> schemas.ProjectOut:
    with services.db.write() as s:
        if s.scalar(select(Project.id).where(Project.name == body.name)) is not None:
            raise conflict(f"project {body.name!r} exists: choose another name")
        project = Project(
            name=body.name,
            quota_rt_cores=body.quota_rt_cores,
            quota_instances=body.quota_instances,
            quota_shared_vcpus=body.quota_shared_vcpus,
            quota_image_bytes=body.quota_image_bytes,
            image_bytes_used=0,
            shared_vcpus_used=0,
            rt_cores_used=0,
            instances_used=0,
            created_at=services.clock(),
        )
        s.add(project)
        s.flush()
        return project_out(project)


@router.get("")
def list_projects(services: ServicesDep, caller: UserDep) -> list[schemas.ProjectOut]:
    with services.db.read() as s:
        query = select(Project).order_by(Project.name)
        if not caller.is_admin:
            query = query.where(Project.id == caller.project_id)
        return [project_out(p) for p in s.scalars(query)]


def _visible(s: Session, name: str, caller: UserDep) -> Project:
    project = s.scalar(select(Project).where(Project.name == name))
    if project is None or (not caller.is_admin and project.id != caller.project_id):
        raise not_found("project", name)
    return project


@router.get("/{name}")
def show_project(name: str, services: ServicesDep, caller: UserDep) -> schemas.ProjectOut:
    with services.db.read() as s:
        return project_out(_visible(s, name, caller))


@router.put("/{name}/quota")
def set_quota(
    name: str, body: schemas.QuotaSet, services: ServicesDep, _: AdminDep
) -> schemas.ProjectOut:
    """Set quotas; lowering one below current use is allowed (new creates are refused)."""
    with services.db.write() as s:
        project = s.scalar(select(Project).where(Project.name == name).with_for_update())
        if project is None:
            raise not_found("project", name)
        if "rt_cores" in body.model_fields_set:
            project.quota_rt_cores = body.rt_cores
        if "instances" in body.model_fields_set:
            project.quota_instances = body.instances
        if "shared_vcpus" in body.model_fields_set:
            project.quota_shared_vcpus = body.shared_vcpus
        if "image_bytes" in body.model_fields_set:
            project.quota_image_bytes = body.image_bytes
        s.flush()
        return project_out(project)


@router.delete("/{name}", status_code=204)
def delete_project(name: str, services: ServicesDep, _: AdminDep) -> Response:
    """Idempotent; refused while the project has users, instances or networks."""
    with services.db.write() as s:
        project = s.scalar(select(Project).where(Project.name == name))
        if project is None:
            return Response(status_code=204)
        history = s.scalar(select(Instance.id).where(Instance.project_id == project.id).limit(1))
        users = s.scalar(select(User.id).where(User.project_id == project.id).limit(1))
        nets = s.scalar(select(Network.id).where(Network.project_id == project.id).limit(1))
        if users or nets:
            raise ApiError(
                409, f"project {name!r} still has users or private networks: delete them first"
            )
        if history:
            raise ApiError(
                409,
                f"project {name!r} has instances or accounting history, which is kept: "
                "set its quotas to 0 to retire it (rtkvm cloud project quota)",
            )
        s.delete(project)
    return Response(status_code=204)
