"""API tokens: a user creates its own, an admin creates one for anyone; list; revoke.
The secret is returned once; only its hash is stored. Must not authenticate (deps.py does)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rtkvm.api.deps import ServicesDep, UserDep
from rtkvm.api.errors import ApiError
from rtkvm.api.security import add_token
from rtkvm.api.views import user_named
from rtkvm.db.models import Host, Token, User
from rtkvm.wire import schemas
from rtkvm.wire.secrets import new_secret

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


def _out(s: Session, t: Token) -> schemas.TokenOut:
    user = s.get(User, t.user_id) if t.user_id is not None else None
    host = s.get(Host, t.host_id) if t.host_id is not None else None
    return schemas.TokenOut(
        id=t.id,
        prefix=t.prefix,
        kind=t.kind,
        user=user.name if user else None,
        host=host.name if host else None,
        created_at=t.created_at,
        expires_at=t.expires_at,
    )


@router.post("", status_code=201)
def create_token(
    body: schemas.TokenCreate, services: ServicesDep, caller: UserDep
) -> schemas.TokenCreated:
    with services.db.write() as s:
        user_id = caller.user_id
        if body.user is not None and body.user != caller.user_name:
            if not caller.is_admin:
                raise ApiError(403, "only an admin may create a token for another user")
            user_id = user_named(s, body.user).id
        secret = new_secret()
        lifetime = body.lifetime_s or services.settings.token_lifetime_s
        token = add_token(s, secret, now=services.clock(), user_id=user_id, lifetime_s=lifetime)
        return schemas.TokenCreated(**_out(s, token).model_dump(), secret=secret)


@router.get("")
def list_tokens(services: ServicesDep, caller: UserDep) -> list[schemas.TokenOut]:
    with services.db.read() as s:
        query = select(Token).order_by(Token.id)
        if not caller.is_admin:
            query = query.where(Token.user_id == caller.user_id)
        return [_out(s, t) for t in s.scalars(query)]


@router.delete("/{token_id}", status_code=204)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=schemas.DB_INT_MAX)],
    services: ServicesDep,
    caller: UserDep,
) -> Response:
    """Idempotent: revoking a token that does not exist (or not yours) changes nothing."""
    with services.db.write() as s:
        token = s.get(Token, token_id)
        if token is not None and (caller.is_admin or token.user_id == caller.user_id):
            s.delete(token)
    return Response(status_code=204)
