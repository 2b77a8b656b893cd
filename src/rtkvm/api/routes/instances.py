"""Instances: create (scheduling -> claimed -> building), list, show, delete.

Create stores the instance in ``scheduling``, then asks the scheduler to
claim a host in one transaction; when nothing fits or the quota is used up,
the instance goes to ``error`` with the reason as its fault and the
response is 409 or 403 with the same reason. An admin may name the host
(``host``): that one or none, every rule still applied but the cloud's
requirement of qualified hosts (rtkvm.api.qualify), which is how a host's
qualification boots its probe servers on it. A NIC may carry the address its
user gave (rtkvm.net.address; the first NIC only), one live instance per IP
and network. Delete is idempotent: an
instance that holds nothing is deleted at once; a placed one goes to
``deleting`` and its host's agent reports ``deleted``, which frees it.
An admin may force the delete (``?force=true``) when that agent will never
come: the host is down or removed, or the instance is in error. It frees
the claims like the agent's report would and logs at WARNING that the
guest may still exist on the host. Must not pin CPUs itself (the scheduler
calls rtkvm.domain.placement).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import uuid
from dataclasses import replace

from fastapi import APIRouter, Query, Response
from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from rtkvm.api.deps import Principal, ServicesDep, UserDep
from rtkvm.api.errors import ApiError, not_found
from rtkvm.api.liveness import host_status
from rtkvm.api.views import (
    address_holder,
    instance_for,
    instance_out,
    instance_out_known,
    instances_out,
    locked_instance,
    network_named,
    owner_project_id,
    project_named,
)
from rtkvm.api.views_images import image_for
from rtkvm.db.models import Flavor, Host, Image, Instance, InstanceNetwork, Keypair, Network
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.errors import InputError, RtkvmError
from rtkvm.net.address import host_interface
from rtkvm.scheduler.claim import (
    holds,
    release,
    schedule,
)
from rtkvm.scheduler.snapshot import Request
from rtkvm.seed.nocloud import USER_DATA_MAX
from rtkvm.wire import schemas
from rtkvm.wire.base import PAGE_MAX
from rtkvm.wire.guest import InstanceOut, NetworkPort
from rtkvm.wire.uuids import is_uuid

router = APIRouter(prefix="/v1/instances", tags=["instances"])
GIB = 1 << 30
log = logging.getLogger("rtkvm.api.instances")


@router.post("", status_code=201)
def create_instance(
    body: schemas.InstanceCreate, services: ServicesDep, caller: UserDep
) -> InstanceOut:
    now = services.clock()
    instance_id = str(uuid.uuid4())
    with services.db.write() as s:
        if services.sweeps.due():  # a crashed peer's stuck creates; long-refused ones
            services.sweeps.run(s, now)
        project_id = owner_project_id(s, body.project, caller, "instances")
        if body.host is not None:
            _check_target(s, body.host, caller)
        flavor = s.scalar(select(Flavor).where(Flavor.name == body.flavor))
        if flavor is None:
            raise not_found("flavor", body.flavor, " (list them with `rtkvm cloud flavor list`)")
        nics = body.nics()
        if len({n.network for n in nics}) != len(nics):
            raise ApiError(422, "a network is listed twice: give each network once")
        addresses = [_address(n) for n in nics]
        if body.image is None and any(a is not None for a in addresses[1:]):
            raise ApiError(
                422,
                "rtkvm's probe image sets an address on its first NIC only (eth0): give it on "
                "the first network, or boot an image (--image), whose cloud-init seed sets "
                "every NIC's address",
            )
        nets = [
            network_named(s, n.network, caller, for_use=True, exclusive=a is not None)
            for n, a in zip(nics, addresses, strict=True)
        ]
        if not caller.is_admin or body.project is not None:
            for net in nets:
                if not net.shared and net.project_id != project_id:
                    raise not_found("network", net.name)
        for net, address in zip(nets, addresses, strict=True):
            if address is not None:
                _check_free(s, net, address)
        image, disk_gb = _disk(s, body, caller, project_id)
        public_key, user_data = _first_boot(s, body, caller)
        spec = RtGuestSpec.model_validate_json(flavor.spec)
        inst = Instance(
            id=instance_id,
            name=body.name,
            project_id=project_id,
            user_id=caller.user_id,
            flavor_name=flavor.name,
            spec=flavor.spec,
            state="scheduling",
            rt_cores=0,
            placement="{}",
            image_id=image.id if image is not None else None,
            disk_gb=disk_gb,
            key_name=body.key_name,
            public_key=public_key,
            user_data=user_data,
            created_at=now,
            updated_at=now,
        )
        s.add(inst)
        s.flush()
        for position, (net, address) in enumerate(zip(nets, addresses, strict=True)):
            s.add(
                InstanceNetwork(
                    instance_id=instance_id, position=position, network_id=net.id, address=address
                )
            )
        request = Request.from_spec(spec, tuple((n.name, n.physnet) for n in nets))
    settings = services.settings
    within = settings.qualified_within_s
    request = replace(
        request,
        target_host=body.host,
        # an admin's chosen host needs no qualification: that is how one is qualified
        qualified_since=now - within if within is not None and body.host is None else None,
        disk_gb=disk_gb or 0,
    )
    began = time.perf_counter()
    try:
        claimed = schedule(
            services.db,
            instance_id=instance_id,
            project_id=project_id,
            spec=spec,
            request=request,
            weigher=settings.weigher,
            agent_timeout_s=settings.agent_timeout_s,
            max_attempts=settings.schedule_attempts,
            now=now,
        )
    except RtkvmError as exc:
        services.metrics.schedule_seconds.labels("refused").observe(time.perf_counter() - began)
        with services.db.write() as s:
            s.execute(
                update(Instance)
                .where(Instance.id == instance_id, Instance.state == "scheduling")
                .values(state="error", fault=str(exc), updated_at=services.clock())
            )
        raise
    services.metrics.schedule_seconds.labels("placed").observe(time.perf_counter() - began)
    # the answer from what the claim wrote, without reading the instance back
    inst.state, inst.host_id, inst.updated_at = "building", claimed.host_id, now
    inst.rt_cores, inst.placement = len(claimed.placement.claimed), claimed.placement_json
    inst.shared_vcpus = len(claimed.placement.floating_vcpus)
    inst.rt_waiver = claimed.rt_waiver
    project = body.project if body.project is not None else caller.project_name
    ports = [
        NetworkPort(name=n.name, physnet=n.physnet, vlan=n.vlan, address=a)
        for n, a in zip(nets, addresses, strict=True)
    ]
    return instance_out_known(inst, project, claimed.host_name, ports, image)


def _check_target(session: Session, name: str, caller: Principal) -> None:
    if not caller.is_admin:
        raise ApiError(
            403, "host: only an admin may choose a server's host; leave it to the scheduler"
        )
    if session.scalar(select(Host.id).where(Host.name == name)) is None:
        raise ApiError(422, f"host {name!r} is not enrolled: give one of `rtkvm cloud host list`")


def _disk(
    session: Session, body: schemas.InstanceCreate, caller: Principal, project_id: int
) -> tuple[Image | None, int | None]:
    """The image the server's disk is made over (locked against deletion until the create
    commits) and the disk's size in GiB; (None, None) for a probe server."""
    if body.image is None:
        if body.disk_gb is not None:
            raise ApiError(422, "disk_gb sizes a server's image disk: give an image too")
        return None, None
    image = image_for(session, body.image, caller, project_id=project_id, for_use=True)
    if image.project_id != project_id and not image.shared:
        raise not_found("image", body.image, " in the server's project")
    if image.status != "active" or image.virtual_size_bytes is None:
        raise ApiError(
            409,
            f"image {image.name} is {image.status}"
            + (f" ({image.fault})" if image.fault else "")
            + ": upload its data first (`rtkvm cloud image create NAME --file F`)",
        )
    least = -(-image.virtual_size_bytes // GIB)
    if body.disk_gb is None:
        return image, least
    if body.disk_gb < least:
        raise ApiError(
            422,
            f"disk_gb {body.disk_gb} is smaller than image {image.name}'s virtual size "
            f"({image.virtual_size_bytes} bytes): give at least {least}",
        )
    return image, body.disk_gb


def _first_boot(
    session: Session, body: schemas.InstanceCreate, caller: Principal
) -> tuple[str | None, str | None]:
    """The keypair's key and the user-data (base64, checked) for the server's seed."""
    if body.image is None and (body.key_name is not None or body.user_data is not None):
        raise ApiError(
            422,
            "a key and user-data reach a server through cloud-init in its image; rtkvm's "
            "probe kernel has none: give an image (--image) or drop them",
        )
    public_key = None
    if body.key_name is not None:
        row = session.scalar(
            select(Keypair).where(Keypair.user_id == caller.user_id, Keypair.name == body.key_name)
        )
        if row is None:
            raise not_found("keypair", body.key_name, " (import one: `rtkvm cloud keypair create`)")
        public_key = row.public_key
    if body.user_data is not None:
        try:
            raw = base64.b64decode(body.user_data, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                422, "user_data must be base64 (the CLI encodes --user-data FILE)"
            ) from None
        if len(raw) > USER_DATA_MAX:
            raise ApiError(
                422, f"user_data is {len(raw)} bytes, over {USER_DATA_MAX}: send less (gzip it)"
            )
    return public_key, body.user_data


def _address(nic: schemas.NicRequest) -> str | None:
    """The NIC's address, normalised; 422 saying what to give for a bad one."""
    if nic.address is None:
        return None
    try:
        return str(host_interface(nic.address))
    except InputError as exc:
        raise ApiError(422, f"network {nic.network}: address {exc}") from None


def _check_free(session: Session, net: Network, address: str) -> None:
    """409 when a live instance holds the address's IP on ``net`` (whose row the caller
    locked FOR UPDATE: two creates asking for one IP are checked one after the other)."""
    holder = address_holder(session, net.id, address)
    if holder is not None:
        raise ApiError(
            409,
            f"address {address.split('/')[0]} on network {net.name} is held by instance "
            f"{holder.name} ({holder.id}, {holder.state}): give another address, or delete "
            "that instance first",
        )


@router.get("")
def list_instances(
    services: ServicesDep,
    caller: UserDep,
    project: str | None = Query(default=None, description="admins: only this project"),
    all_projects: bool = Query(default=False, description="admins: every project"),
    limit: int = Query(default=PAGE_MAX, ge=1, le=PAGE_MAX, description="at most this many"),
    marker: str | None = Query(
        default=None, max_length=36, description="the id of the last instance of the previous page"
    ),
) -> list[InstanceOut]:
    """Oldest first, a page at a time (``limit``, then ``marker`` = the last id seen)."""
    with services.db.read() as s:
        query = select(Instance).where(Instance.state != "deleted")
        if caller.is_admin and project is not None:
            query = query.where(Instance.project_id == project_named(s, project).id)
        elif not (caller.is_admin and all_projects):
            query = query.where(Instance.project_id == caller.project_id)
        if marker is not None:
            last = s.get(Instance, marker.lower()) if is_uuid(marker) else None
            if last is None:
                raise ApiError(400, f"marker {marker!r} is no instance: give the last id you saw")
            query = query.where(
                tuple_(Instance.created_at, Instance.id) > tuple_(last.created_at, last.id)
            )
        query = query.order_by(Instance.created_at, Instance.id).limit(limit)
        return instances_out(s, list(s.scalars(query)))


@router.get("/{instance_id}")
def show_instance(instance_id: str, services: ServicesDep, caller: UserDep) -> InstanceOut:
    with services.db.read() as s:
        return instance_out(s, instance_for(s, instance_id, caller))


@router.delete("/{instance_id}", status_code=204)
def delete_instance(
    instance_id: str,
    services: ServicesDep,
    caller: UserDep,
    force: bool = Query(
        default=False,
        description="admins: free the instance without its host's agent (host down or "
        "removed, or instance in error); the guest may stay on the host",
    ),
) -> Response:
    """Idempotent: 204 for an unknown or already deleted instance too."""
    now = services.clock()
    if force:
        if not caller.is_admin:
            raise ApiError(
                403,
                "a forced delete needs the admin role (it frees the instance without its "
                "host): use a plain delete, or ask an admin",
            )
        _force_delete(instance_id, services, caller, now)
        return Response(status_code=204)
    with services.db.write() as s:
        inst = locked_instance(s, instance_id)  # one state change of an instance at a time
        if inst is None or inst.state in ("deleted", "deleting"):
            return Response(status_code=204)
        if not caller.is_admin and inst.project_id != caller.project_id:
            return Response(status_code=204)  # as if unknown: ids of others do not leak
        if not holds(inst):
            inst.state = "deleted"
        else:
            inst.state = "deleting"
        inst.task = None  # a power action under way gives way to the delete
        inst.updated_at = now
    return Response(status_code=204)


def _force_delete(instance_id: str, services: ServicesDep, admin: Principal, now: float) -> None:
    """Release the instance as the agent's 'deleted' report would; refused (409) while its
    host is up and it is not in error, since a plain delete then does it properly."""
    with services.db.write() as s:
        inst = locked_instance(s, instance_id)
        if inst is None or inst.state == "deleted":
            return
        if inst.host_id is None:  # never placed: nothing exists on any host
            inst.state = "deleted"
            inst.updated_at = now
            return
        host = s.get(Host, inst.host_id)
        where = host.name if host else "its former host"
        status = host_status(host, now, services.settings.agent_timeout_s) if host else "removed"
        if status == "up" and inst.state != "error":
            raise ApiError(
                409,
                f"instance {instance_id} is {inst.state} on host {where}, which is up: its "
                "agent tears it down, so use a plain delete (without --force)",
            )
        was = inst.state
        release(s, inst, now)
        inst.state = "deleted"
        inst.fault = (
            f"force-deleted by admin {admin.user_name} while {was} "
            f"(host {where} {status}); the guest may still exist there"
        )
        inst.updated_at = now
    log.warning(
        "instance %s force-deleted by admin %s (was %s, host %s %s): its guest may still exist "
        "on %s; run `rtkvm guest delete rtkvm-%s` there",
        instance_id,
        admin.user_name,
        was,
        where,
        status,
        where,
        instance_id,
    )
