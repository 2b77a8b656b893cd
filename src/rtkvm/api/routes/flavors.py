"""Flavors: admins create them from Nova extra specs or rtkvm's own spec (validated by
rtkvm.domain.spec); everyone reads them. Must not schedule."""

from __future__ import annotations

import json

from fastapi import APIRouter, Response
from sqlalchemy import select

from rtkvm.api.deps import AdminDep, ServicesDep, UserDep
from rtkvm.api.errors import ApiError, conflict, not_found
from rtkvm.db.models import Flavor
from rtkvm.domain.spec import RtGuestSpec, from_extra_specs, load_flavor
from rtkvm.scheduler.snapshot import claimed_pcpus
from rtkvm.wire import schemas

router = APIRouter(prefix="/v1/flavors", tags=["flavors"])


def flavor_out(f: Flavor) -> schemas.FlavorOut:
    spec = RtGuestSpec.model_validate_json(f.spec)
    return schemas.FlavorOut(
        name=f.name,
        vcpus=spec.vcpus,
        ram=spec.memory_mib,
        rt_vcpus=str(spec.rt_vcpus),
        emulator_threads_policy=spec.emulator_threads_policy,
        page_size=spec.page_size,
        rt_cores=claimed_pcpus(spec),
        numa_nodes=spec.numa_nodes,
        extra_specs=json.loads(f.extra_specs),
        spec=spec.model_dump(),
    )


def _spec_of(body: schemas.FlavorCreate) -> RtGuestSpec:
    if body.spec is not None:
        if body.extra_specs or body.vcpus is not None or body.ram is not None:
            raise ApiError(422, "give either spec, or vcpus + ram + extra_specs, not both")
        return load_flavor(json.dumps({**body.spec, "name": body.name}), source="spec").spec
    if body.vcpus is None or body.ram is None:
        raise ApiError(422, "a flavor needs vcpus and ram (MiB), or a spec")
    parsed = from_extra_specs(
        body.extra_specs, vcpus=body.vcpus, memory_mib=body.ram, name=body.name
    )
    if parsed.ignored:
        raise ApiError(
            422,
            f"extra specs {', '.join(parsed.ignored)} are not understood by rtkvm: remove them",
        )
    return parsed.spec


@router.post("", status_code=201)
def create_flavor(
    body: schemas.FlavorCreate, services: ServicesDep, _: AdminDep
) -> schemas.FlavorOut:
    spec = _spec_of(body)
    if spec.cpu_policy == "mixed" and not spec.realtime:
        raise ApiError(
            422,
            f"flavor {body.name!r} has hw:cpu_policy=mixed without hw:cpu_realtime=yes: a "
            "mixed guest's dedicated vCPUs are its RT vCPUs; add hw:cpu_realtime=yes and "
            "hw:cpu_realtime_mask naming them, or use hw:cpu_policy=shared (every vCPU on "
            "the host's shared CPUs) or dedicated",
        )
    with services.db.write() as s:
        if s.scalar(select(Flavor.id).where(Flavor.name == body.name)) is not None:
            raise conflict(f"flavor {body.name!r} exists: choose another name")
        flavor = Flavor(
            name=body.name,
            spec=spec.model_dump_json(),
            extra_specs=json.dumps(body.extra_specs, sort_keys=True),
            created_at=services.clock(),
        )
        s.add(flavor)
        s.flush()
        return flavor_out(flavor)


@router.get("")
def list_flavors(services: ServicesDep, _: UserDep) -> list[schemas.FlavorOut]:
    with services.db.read() as s:
        return [flavor_out(f) for f in s.scalars(select(Flavor).order_by(Flavor.name))]


@router.get("/{name}")
def show_flavor(name: str, services: ServicesDep, _: UserDep) -> schemas.FlavorOut:
    with services.db.read() as s:
        flavor = s.scalar(select(Flavor).where(Flavor.name == name))
        if flavor is None:
            raise not_found("flavor", name, " (list them with `rtkvm cloud flavor list`)")
        return flavor_out(flavor)


@router.delete("/{name}", status_code=204)
def delete_flavor(name: str, services: ServicesDep, _: AdminDep) -> Response:
    """Idempotent. Running instances keep the spec they were created with."""
    with services.db.write() as s:
        flavor = s.scalar(select(Flavor).where(Flavor.name == name))
        if flavor is not None:
            s.delete(flavor)
    return Response(status_code=204)
