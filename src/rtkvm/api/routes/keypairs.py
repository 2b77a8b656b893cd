"""Keypairs: a user's SSH public keys by name (import, list, show, delete).

A key is checked and normalised by :mod:`rtkvm.seed.keys` (type, data,
RSA size) and stored with its fingerprint; rtkvm never makes or holds a
private key. Keypairs are the user's own, as in Nova: another user of the
same project neither sees nor uses them. A server created with one keeps a
copy, so deleting the keypair changes no server. This module must not
write seeds (the agent does).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rtkvm.api.deps import ServicesDep, UserDep
from rtkvm.api.errors import ApiError, not_found
from rtkvm.db.models import Keypair
from rtkvm.errors import InputError
from rtkvm.seed.keys import parse_public_key
from rtkvm.wire.keypairs import KeypairCreate, KeypairOut

router = APIRouter(prefix="/v1/keypairs", tags=["keypairs"])
HINT = " (list yours with `rtkvm cloud keypair list`)"


def keypair_out(row: Keypair) -> KeypairOut:
    return KeypairOut(
        name=row.name,
        type=row.public_key.split(" ", 1)[0],
        fingerprint=row.fingerprint,
        public_key=row.public_key,
        created_at=row.created_at,
    )


@router.post("", status_code=201)
def create_keypair(body: KeypairCreate, services: ServicesDep, caller: UserDep) -> KeypairOut:
    """Import a public key under a name of the caller's."""
    try:
        key = parse_public_key(body.public_key)
    except InputError as exc:
        raise ApiError(422, f"keypair {body.name}: {exc}") from None
    with services.db.write() as s:
        row = Keypair(
            user_id=caller.user_id,
            name=body.name,
            public_key=key.line,
            fingerprint=key.fingerprint,
            created_at=services.clock(),
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError:
            raise ApiError(
                409, f"you have a keypair named {body.name!r}: delete it first or pick a name"
            ) from None
        return keypair_out(row)


@router.get("")
def list_keypairs(services: ServicesDep, caller: UserDep) -> list[KeypairOut]:
    with services.db.read() as s:
        rows = s.scalars(
            select(Keypair).where(Keypair.user_id == caller.user_id).order_by(Keypair.name)
        )
        return [keypair_out(r) for r in rows]


@router.get("/{name}")
def show_keypair(name: str, services: ServicesDep, caller: UserDep) -> KeypairOut:
    with services.db.read() as s:
        row = s.scalar(
            select(Keypair).where(Keypair.user_id == caller.user_id, Keypair.name == name)
        )
        if row is None:
            raise not_found("keypair", name, HINT)
        return keypair_out(row)


@router.delete("/{name}", status_code=204)
def delete_keypair(name: str, services: ServicesDep, caller: UserDep) -> Response:
    """Idempotent; servers made with it keep their copy of the key."""
    with services.db.write() as s:
        row = s.scalar(
            select(Keypair).where(Keypair.user_id == caller.user_id, Keypair.name == name)
        )
        if row is not None:
            s.delete(row)
    return Response(status_code=204)
