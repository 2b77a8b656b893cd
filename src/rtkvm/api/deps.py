"""Typed FastAPI dependencies: services, the database, and who is calling.

``Caller`` resolves the bearer token to a :class:`Principal` (a user with a
role and a project, or a host's agent). ``AdminDep``, ``UserDep`` and
``AgentDep`` refuse the wrong kind of caller with 401/403 and a message
saying which credential to use. This module must not contain route logic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from rtkvm.api.errors import ApiError
from rtkvm.api.sweeps import Sweeps
from rtkvm.api.throttle import AuthThrottle
from rtkvm.db.engine import Database
from rtkvm.db.models import Host, Project, Token, User
from rtkvm.settings import Settings
from rtkvm.wire.secrets import hash_secret

if TYPE_CHECKING:
    from rtkvm.api.metrics import Metrics


@dataclass(frozen=True)
class Services:
    """What every route may use; built once by create_app, no globals."""

    settings: Settings
    db: Database
    clock: Callable[[], float]
    throttle: AuthThrottle
    sweeps: Sweeps
    metrics: Metrics


@dataclass(frozen=True)
class Principal:
    kind: str  # "user" | "agent"
    user_id: int | None = None
    user_name: str = ""
    role: str = ""
    project_id: int | None = None
    project_name: str = ""
    host_id: int | None = None
    host_name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.kind == "user" and self.role == "admin"


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

_bearer = HTTPBearer(auto_error=False)


def get_caller(
    request: Request,
    services: ServicesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return authenticate(services, request.client.host if request.client else "unknown", creds)


def authenticate(
    services: Services, source: str, creds: HTTPAuthorizationCredentials | None
) -> Principal:
    """Who sent these credentials from ``source``; failures are counted per source (429)."""
    wait = services.throttle.retry_after(source)
    if wait is not None:
        raise ApiError(429, f"too many failed authentications from {source}: retry in {wait:.0f} s")
    try:
        return _principal(services, creds)
    except ApiError as exc:
        if exc.status == 401:
            services.throttle.failed(source, exc.message)
        raise


def principal_of(request: Request, services: Services, token: str) -> Principal:
    """Who a token (from a cookie: the dashboard) is; throttled like a bearer token."""
    return get_caller(
        request, services, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    )


def _principal(services: Services, creds: HTTPAuthorizationCredentials | None) -> Principal:
    if creds is None or not creds.credentials:
        raise ApiError(401, "no API token: send 'Authorization: Bearer <token>'")
    with services.db.read() as session:
        token = session.scalar(
            select(Token).where(Token.secret_hash == hash_secret(creds.credentials))
        )
        if token is None:
            raise ApiError(401, "unknown or revoked API token: ask an admin for a new one")
        if token.expires_at is not None and services.clock() >= token.expires_at:
            raise ApiError(
                401,
                f"this API token expired at {_utc(token.expires_at)}: create a new one "
                "(`rtkvm cloud token issue`) with a token that is still valid, or ask an admin",
            )
        if token.kind == "agent" and token.host_id is not None:
            host = session.get(Host, token.host_id)
            if host is None:
                raise ApiError(401, "this agent token's host was removed: enroll the host again")
            return Principal(kind="agent", host_id=host.id, host_name=host.name)
        user = session.get(User, token.user_id) if token.user_id is not None else None
        if user is None:
            raise ApiError(401, "this token's user was removed")
        project = session.get(Project, user.project_id)
        return Principal(
            kind="user",
            user_id=user.id,
            user_name=user.name,
            role=user.role,
            project_id=user.project_id,
            project_name=project.name if project else "",
        )


Caller = Annotated[Principal, Depends(get_caller)]


def require_user(caller: Caller) -> Principal:
    if caller.kind != "user":
        raise ApiError(403, "an agent token can only use the agent API: use a user token")
    return caller


def require_admin(caller: Caller) -> Principal:
    if not caller.is_admin:
        raise ApiError(403, "this needs the admin role: use an admin's token")
    return caller


def require_agent(caller: Caller) -> Principal:
    if caller.kind != "agent":
        raise ApiError(
            403,
            "this is for host agents: use the agent token given by "
            "`rtkvm cloud host enroll`, not a user token",
        )
    return caller


UserDep = Annotated[Principal, Depends(require_user)]
AdminDep = Annotated[Principal, Depends(require_admin)]
AgentDep = Annotated[Principal, Depends(require_agent)]


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
