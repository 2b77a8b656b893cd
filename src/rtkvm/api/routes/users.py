"""Users (admin only): create in a project with a role, list, delete with their tokens.
Must not create tokens (that is tokens.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import delete, select

from rtkvm.api.deps import AdminDep, ServicesDep
from rtkvm.api.errors import ApiError, conflict
from rtkvm.api.views import project_named
from rtkvm.db.models import Instance, Project, Token, User
from rtkvm.wire import schemas

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.post("", status_code=201)
def create_user(body: schemas.UserCreate, services: ServicesDep, _: AdminDep) -> schemas.UserOut:
    with services.db.write() as s:
        project = project_named(s, body.project)
        if s.scalar(select(User.id).where(User.name == body.name)) is not None:
            raise conflict(f"user {body.name!r} exists: choose another name")
        user = User(
            name=body.name, project_id=project.id, role=body.role, created_at=services.clock()
        )
        s.add(user)
        s.flush()
        return schemas.UserOut(id=user.id, name=user.name, project=project.name, role=user.role)


@router.get("")
def list_users(services: ServicesDep, _: AdminDep) -> list[schemas.UserOut]:
    with services.db.read() as s:
        rows = s.execute(
            select(User, Project.name)
            .join(Project, Project.id == User.project_id)
            .order_by(User.name)
        )
        return [schemas.UserOut(id=u.id, name=u.name, project=p, role=u.role) for u, p in rows]


@router.delete("/{name}", status_code=204)
def delete_user(name: str, services: ServicesDep, caller: AdminDep) -> Response:
    """Idempotent; revokes the user's tokens. Refused for yourself and for owners of instances."""
    with services.db.write() as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            return Response(status_code=204)
        if user.id == caller.user_id:
            raise ApiError(409, "you cannot delete yourself: use another admin")
        owns = s.scalar(select(Instance.state).where(Instance.user_id == user.id).limit(1))
        if owns is not None:
            raise ApiError(
                409,
                f"user {name!r} created instances, which keep a reference for accounting: "
                "revoke the user's tokens instead (DELETE /v1/tokens/ID)",
            )
        s.execute(delete(Token).where(Token.user_id == user.id))
        s.delete(user)
    return Response(status_code=204)
