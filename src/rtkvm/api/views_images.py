"""Images: who sees which, lookups by name or id, and rows to response bodies.

A member sees its project's images and shared ones; an admin sees all. A
name is looked up in the caller's (or the named) project first, then among
shared images. An image is in use while a server that is not deleted has a
disk made over it. This module must not write.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from rtkvm.api.deps import Principal
from rtkvm.api.errors import ApiError, not_found
from rtkvm.db.models import Image, Instance, Project
from rtkvm.wire.images import ImageOut, ImageRef
from rtkvm.wire.uuids import is_uuid

HINT = " (list the ones you may use with `rtkvm cloud image list`)"


def visible_images(caller: Principal) -> ColumnElement[bool]:
    if caller.is_admin:
        return Image.status != "deleted"
    return (Image.status != "deleted") & or_(
        Image.project_id == caller.project_id, Image.shared.is_(True)
    )


def image_for(
    session: Session,
    ref: str,
    caller: Principal,
    *,
    project_id: int | None = None,
    lock: bool = False,
    for_use: bool = False,
) -> Image:
    """The image named or numbered ``ref`` that the caller may use; ``project_id``: the
    project whose own image wins a name (default the caller's). ``lock``: FOR UPDATE (a
    delete); ``for_use``: FOR SHARE until the transaction ends (a create that boots it)."""
    query = select(Image).where(visible_images(caller))
    query = query.where(Image.id == ref) if is_uuid(ref) else query.where(Image.name == ref)
    if lock or for_use:
        query = query.with_for_update(read=not lock)
    rows = list(session.scalars(query))
    if not rows:
        raise not_found("image", ref, HINT)
    if len(rows) == 1:
        return rows[0]
    home = caller.project_id if project_id is None else project_id
    own = [r for r in rows if r.project_id == home]
    if len(own) == 1:
        return own[0]
    shared = [r for r in rows if r.shared]
    if not own and len(shared) == 1:
        return shared[0]
    ids = ", ".join(r.id for r in rows)
    raise ApiError(409, f"{len(rows)} images are named {ref!r}: give one by id ({ids})")


def in_use(session: Session, image_ids: list[str]) -> dict[str, int]:
    """Live servers per image."""
    if not image_ids:
        return {}
    rows = session.execute(
        select(Instance.image_id, func.count())
        .where(Instance.image_id.in_(image_ids), Instance.state != "deleted")
        .group_by(Instance.image_id)
    )
    return {str(image_id): int(count) for image_id, count in rows}


def images_out(session: Session, rows: list[Image]) -> list[ImageOut]:
    projects = dict(
        session.execute(
            select(Project.id, Project.name).where(Project.id.in_({r.project_id for r in rows}))
        ).all()
    )
    used = in_use(session, [r.id for r in rows])
    return [
        ImageOut(
            id=r.id,
            name=r.name,
            project=projects.get(r.project_id, ""),
            shared=r.shared,
            status=r.status,  # type: ignore[arg-type]
            disk_format=r.disk_format,  # type: ignore[arg-type]
            size_bytes=r.size_bytes,
            virtual_size_bytes=r.virtual_size_bytes,
            sha256=r.sha256,
            fault=r.fault,
            in_use=used.get(r.id, 0),
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


def image_ref(row: Image) -> ImageRef:
    """What an agent needs of an active image (only active images are booted)."""
    return ImageRef(
        id=row.id,
        name=row.name,
        disk_format=row.disk_format,  # type: ignore[arg-type]
        size_bytes=row.size_bytes or 0,
        virtual_size_bytes=row.virtual_size_bytes or 1,
        sha256=row.sha256 or "",
    )
