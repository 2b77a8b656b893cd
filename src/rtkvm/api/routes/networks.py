"""Unmanaged L2 networks: admins create them (shared, or private to one project) after
the isolation rules of rtkvm.net.model; members list those they may use. Must not wire hosts."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import delete, select

from rtkvm.api.deps import AdminDep, ServicesDep, UserDep
from rtkvm.api.errors import ApiError, conflict
from rtkvm.api.views import network_named, network_out, project_named, visible_networks
from rtkvm.db.models import Instance, InstanceNetwork, Network
from rtkvm.net.model import UnmanagedNetwork, check_isolation
from rtkvm.wire import schemas

router = APIRouter(prefix="/v1/networks", tags=["networks"])


@router.post("", status_code=201)
def create_network(
    body: schemas.NetworkCreate, services: ServicesDep, caller: AdminDep
) -> schemas.NetworkOut:
    candidate = UnmanagedNetwork(body.name, body.physnet, body.vlan)  # NetworkError -> 400
    if body.shared and body.project is not None:
        raise ApiError(422, "a shared network has no owner project: drop project or shared")
    with services.db.write() as s:
        if s.scalar(select(Network.id).where(Network.name == body.name)) is not None:
            raise conflict(f"network {body.name!r} exists: choose another name")
        others = [
            UnmanagedNetwork(n.name, n.physnet, n.vlan)
            for n in s.scalars(select(Network).where(Network.physnet == body.physnet))
        ]
        check_isolation([*others, candidate])
        owner = None
        if not body.shared:
            owner = project_named(s, body.project).id if body.project else caller.project_id
        net = Network(
            name=body.name,
            physnet=body.physnet,
            vlan=body.vlan,
            shared=body.shared,
            project_id=owner,
            created_at=services.clock(),
        )
        s.add(net)
        s.flush()
        return network_out(s, net)


@router.get("")
def list_networks(services: ServicesDep, caller: UserDep) -> list[schemas.NetworkOut]:
    with services.db.read() as s:
        nets = s.scalars(select(Network).where(visible_networks(caller)).order_by(Network.name))
        return [network_out(s, n) for n in nets]


@router.get("/{name}")
def show_network(name: str, services: ServicesDep, caller: UserDep) -> schemas.NetworkOut:
    with services.db.read() as s:
        return network_out(s, network_named(s, name, caller))


@router.delete("/{name}", status_code=204)
def delete_network(name: str, services: ServicesDep, _: AdminDep) -> Response:
    """Idempotent; refused while instances use the network."""
    with services.db.write() as s:
        # locked: a create attaching it holds it FOR SHARE, so one waits for the other
        net = s.scalar(select(Network).where(Network.name == name).with_for_update())
        if net is None:
            return Response(status_code=204)
        used = s.scalar(
            select(Instance.id)
            .join(InstanceNetwork, InstanceNetwork.instance_id == Instance.id)
            .where(InstanceNetwork.network_id == net.id, Instance.state != "deleted")
            .limit(1)
        )
        if used is not None:
            raise ApiError(409, f"network {name!r} is used by instance {used}: delete it first")
        s.execute(delete(InstanceNetwork).where(InstanceNetwork.network_id == net.id))
        s.delete(net)
    return Response(status_code=204)
