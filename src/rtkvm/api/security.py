"""API tokens in the database: adding, lookup, and the first admin.

The secret's form and hash are rtkvm.wire.secrets'; the secret is shown
once, when created. This module must not know routes.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtkvm.db.models import Project, Token, User
from rtkvm.wire.secrets import PREFIX, hash_secret


def add_token(
    session: Session,
    secret: str,
    *,
    now: float,
    user_id: int | None = None,
    host_id: int | None = None,
    lifetime_s: float | None = None,
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
        expires_at=now + lifetime_s if lifetime_s is not None else None,
    )
    session.add(token)
    session.flush()
    return token


def ensure_admin(
    session: Session, secret: str, now: float, lifetime_s: float | None = None
) -> bool:
    """Create project 'admin' and user 'admin' with this token when no admin exists; the
    token expires after ``lifetime_s`` (a bootstrap secret sits in an environment)."""
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
        add_token(session, secret, now=now, user_id=user.id, lifetime_s=lifetime_s)
    return True
