"""Images: create the record, upload the data, list, show, delete; agents fetch them.

``POST /v1/images`` makes a ``queued`` record; ``PUT /v1/images/{id}/file``
streams the data (``application/octet-stream``) into the store, at most
``Settings.image_max_bytes``, hashed on the way, then qemu-img judges it
(:mod:`rtkvm.image.inspect`): the image becomes ``active`` with its format,
sizes and sha256, or goes back to ``queued`` with the reason as its fault
(422) and nothing kept. A project's active images may take at most its image
quota (``quota_image_bytes``): an upload is cut off where it would pass it,
and checked again, with the project's row locked, as it activates (two
uploads at once cannot both fit in the same room); 403 with what is used.
Member images belong to their project; only an admin
may share one with every project. An image with live servers on it cannot be
deleted (409). ``GET /v1/agent/images/{id}/file`` gives an agent the image
of a server on its host, and no other. This module must not inspect images
itself or touch a host.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from rtkvm.api.deps import AgentDep, Principal, Services, ServicesDep, UserDep
from rtkvm.api.errors import ApiError, not_found
from rtkvm.api.image_store import ImageStore, TooLargeError
from rtkvm.api.views import owner_project_id
from rtkvm.api.views_images import image_for, images_out, in_use, visible_images
from rtkvm.db.models import Image, Instance, Project
from rtkvm.errors import InputError
from rtkvm.image.inspect import ImageFacts, inspect_image
from rtkvm.wire.images import ImageCreate, ImageOut

router = APIRouter(tags=["images"])


def _store(services: Services) -> ImageStore:
    return ImageStore(Path(services.settings.image_store_dir))


@router.post("/v1/images", status_code=201)
def create_image(body: ImageCreate, services: ServicesDep, caller: UserDep) -> ImageOut:
    """A queued image record; its data follows with PUT .../file."""
    if body.shared and not caller.is_admin:
        raise ApiError(403, "only an admin may share an image with every project: drop shared")
    now = services.clock()
    with services.db.write() as s:
        project_id = owner_project_id(s, body.project, caller, "images")
        row = Image(
            id=str(uuid.uuid4()),
            name=body.name,
            project_id=project_id,
            shared=body.shared,
            status="queued",
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError:
            raise ApiError(
                409,
                f"the project already has an image named {body.name!r}: pick another name, or "
                "delete that image first",
            ) from None
        return images_out(s, [row])[0]


@router.get("/v1/images")
def list_images(services: ServicesDep, caller: UserDep) -> list[ImageOut]:
    """The images the caller may boot (admins: all), by name."""
    with services.db.read() as s:
        rows = list(s.scalars(select(Image).where(visible_images(caller)).order_by(Image.name)))
        return images_out(s, rows)


@router.get("/v1/images/{ref}")
def show_image(ref: str, services: ServicesDep, caller: UserDep) -> ImageOut:
    with services.db.read() as s:
        return images_out(s, [image_for(s, ref, caller)])[0]


@router.delete("/v1/images/{ref}", status_code=204)
def delete_image(ref: str, services: ServicesDep, caller: UserDep) -> Response:
    """Delete an image no live server uses; its file goes with it."""
    with services.db.write() as s:
        row = image_for(s, ref, caller, lock=True)
        _check_owner(row, caller, "delete")
        used = in_use(s, [row.id]).get(row.id, 0)
        if used:
            raise ApiError(
                409,
                f"image {row.name} is the disk of {used} server(s): delete them first "
                "(`rtkvm cloud server list` shows each server's image)",
            )
        if row.status == "active" and row.size_bytes:
            project = s.get(Project, row.project_id, with_for_update=True)
            assert project is not None  # a foreign key
            project.image_bytes_used = max(0, project.image_bytes_used - row.size_bytes)
        row.status = "deleted"
        row.updated_at = services.clock()
        image_id = row.id
    _store(services).remove(image_id)
    return Response(status_code=204)


def _check_owner(row: Image, caller: Principal, what: str) -> None:
    if not caller.is_admin and row.project_id != caller.project_id:
        raise ApiError(403, f"image {row.name} is shared by an admin: only an admin may {what} it")


@router.put("/v1/images/{image_id}/file")
async def upload_image(
    image_id: str, request: Request, services: ServicesDep, caller: UserDep
) -> ImageOut:
    """The image's data as the body (application/octet-stream): stored, inspected,
    activated; refused with the reason and nothing kept."""
    room = await run_in_threadpool(_begin, services, caller, image_id)
    store = _store(services)
    settings = services.settings
    limit = settings.image_max_bytes if room is None else min(room, settings.image_max_bytes)
    try:
        received = await store.receive(image_id, request.stream(), limit)
        facts = await run_in_threadpool(
            inspect_image, store.partial(image_id), max_virtual=settings.image_max_virtual_bytes
        )
    except TooLargeError:
        if room is not None and room < settings.image_max_bytes:
            why = _over_quota(room)
            await run_in_threadpool(_refused, services, image_id, why)
            raise ApiError(403, why) from None
        why = (
            f"the upload is larger than this cloud takes ({settings.image_max_bytes} bytes): "
            "upload a smaller image (qcow2 keeps only what is written)"
        )
        await run_in_threadpool(_refused, services, image_id, why)
        raise ApiError(413, why) from None
    except InputError as exc:
        store.discard(image_id)
        await run_in_threadpool(_refused, services, image_id, str(exc))
        raise ApiError(422, str(exc)) from None
    except ClientDisconnect:
        why = "the upload was cut off: send it again"
        await run_in_threadpool(_refused, services, image_id, why)
        raise ApiError(400, why) from None
    except BaseException:
        store.discard(image_id)
        await run_in_threadpool(_refused, services, image_id, "the upload failed: send it again")
        raise
    return await run_in_threadpool(
        _finish, services, image_id, received.size, received.sha256, facts
    )


def _over_quota(room: int) -> str:
    return (
        f"the image is larger than the room left in the project's image quota ({room} bytes): "
        "delete images the project no longer boots, or ask an admin for a larger quota "
        "(`rtkvm cloud project quota NAME --image-gib N`)"
    )


def _room(project: Project) -> int | None:
    """Bytes the project's images may still take; None: no quota."""
    if project.quota_image_bytes is None:
        return None
    return max(0, project.quota_image_bytes - project.image_bytes_used)


def _begin(services: Services, caller: Principal, image_id: str) -> int | None:
    """Mark the image saving; the room left in its project's image quota (None: none)."""
    with services.db.write() as s:
        row = s.get(Image, image_id, with_for_update=True)
        if row is None or row.status == "deleted":
            raise not_found("image", image_id)
        if not caller.is_admin and row.project_id != caller.project_id:
            if row.shared:
                _check_owner(row, caller, "upload to")
            raise not_found("image", image_id)
        if row.status != "queued":
            raise ApiError(
                409,
                f"image {row.name} is {row.status}: data is uploaded once, to a queued image "
                "(make a new image for new data)",
            )
        project = s.get(Project, row.project_id)
        assert project is not None  # a foreign key
        room = _room(project)
        if room == 0:
            raise ApiError(
                403,
                f"project {project.name} uses its whole image quota ({project.image_bytes_used} "
                f"of {project.quota_image_bytes} bytes): delete images it no longer boots, or "
                "ask an admin for a larger quota",
            )
        row.status = "saving"
        row.fault = None
        row.updated_at = services.clock()
        return room


def _refused(services: Services, image_id: str, why: str) -> None:
    with services.db.write() as s:
        row = s.get(Image, image_id, with_for_update=True)
        if row is not None and row.status == "saving":
            row.status = "queued"
            row.fault = why
            row.updated_at = services.clock()


def _finish(
    services: Services, image_id: str, size: int, sha256: str, facts: ImageFacts
) -> ImageOut:
    """Activate the image and count it in its project's image bytes, in one transaction
    with the project's row locked; over the quota (another upload took the room), the data
    goes and the image is queued again with the reason (403)."""
    store = _store(services)
    with services.db.write() as s:
        row = s.get(Image, image_id, with_for_update=True)
        if row is None or row.status != "saving":
            store.discard(image_id)
            raise ApiError(409, f"image {image_id} was deleted while its data arrived")
        project = s.get(Project, row.project_id, with_for_update=True)
        assert project is not None  # a foreign key
        room = _room(project)
        row.updated_at = services.clock()
        if room is not None and size > room:
            store.discard(image_id)
            row.status, row.fault = "queued", _over_quota(room)
            refused = row.fault
        else:
            refused = None
            project.image_bytes_used += size
            store.commit(image_id)
            row.status = "active"
            row.disk_format = facts.format
            row.size_bytes = size
            row.virtual_size_bytes = facts.virtual_size
            row.sha256 = sha256
            s.flush()
            out = images_out(s, [row])[0]
    if refused is not None:  # the queued state is kept: the transaction is committed
        raise ApiError(403, refused)
    return out


@router.get("/v1/agent/images/{image_id}/file")
def agent_image(image_id: str, services: ServicesDep, agent: AgentDep) -> FileResponse:
    """The data of an image that a server on the agent's host boots."""
    with services.db.read() as s:
        row = s.get(Image, image_id)
        wanted = s.scalar(
            select(Instance.id)
            .where(
                Instance.image_id == image_id,
                Instance.host_id == agent.host_id,
                Instance.state != "deleted",
            )
            .limit(1)
        )
        if row is None or row.status != "active" or wanted is None:
            raise not_found("image", image_id, " among the images of this host's servers")
        sha256 = row.sha256 or ""
    path = _store(services).path(image_id)
    if not path.is_file():
        raise ApiError(
            409, f"image {image_id} is active but its file is missing from the store {path.parent}"
        )
    return FileResponse(
        path, media_type="application/octet-stream", headers={"X-Image-Sha256": sha256}
    )
