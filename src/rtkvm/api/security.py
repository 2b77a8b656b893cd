"""API tokens: generation, hashing, lookup, and the first admin.

A token is ``rtk_`` + 32 random bytes (URL-safe base64). Only its SHA-256
is stored: a token carries 256 bits of entropy, so a slow password hash
adds nothing, and a fast hash keeps every request at one indexed lookup.
The secret is shown once, when created. This module must not know routes.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtkvm.db.models import Project, Token, User

PREFIX = "rtk_"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_token(
    session: Session,
    secret: str,
    *,
    now: float,
    user_id: int | None = None,
    host_id: int | None = None,
) -> Token:
    """Store a token for a user or for a host's agent (exactly one of them)."""
    if (user_id is None) == (host_id is None):
        raise ValueError("a token belongs to a user or to a host, not both")
    token = Token(
        secret_hash=hash_secret(secret),
        prefix=secret[: len(PREFIX) + 6],
        kind="user" if user_id is not None else "agent",
        user_id=user_id,
        host_id=host_id,
        created_at=now,
    )
    session.add(token)
    session.flush()
    return token


def ensure_admin(session: Session, secret: str, now: float) -> bool:
    """Create project 'admin' and user 'admin' with this token when no admin exists."""
    if session.scalar(select(User.id).where(User.role == "admin").limit(1)) is not None:
        return False
    project = session.scalar(select(Project).where(Project.name == "admin"))
    if project is None:
        project = Project(name="admin", created_at=now, rt_cores_used=0, instances_used=0)
        session.add(project)
        session.flush()
    user = User(name="admin", project_id=project.id, role="admin", created_at=now)
    session.add(user)
    session.flush()
    if session.scalar(select(Token.id).where(Token.secret_hash == hash_secret(secret))) is None:
        add_token(session, secret, now=now, user_id=user.id)
    return True
