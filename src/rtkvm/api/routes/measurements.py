"""Measurements: a user asks for latency proof of its instances; their host's agent runs it.

``cyclictest`` measures inside one instance; ``rtt`` measures the round trip
from one instance (the client, ``server`` in the body) to another (``peer``).
Between probe servers it runs over the first network of both (the probe
image configures only eth0), on the addresses their users gave that NIC
unless the request names others. A server that boots its tenant's image is
never rebooted into rtkvm's probe: its cyclictest runs through its guest
agent, and so does a round trip between two such servers, over any network
both have, on the addresses their users gave there (required: rtkvm never
sets one in a tenant's system); a round trip between a probe and a tenant's
server is refused. Both must be active. On one host, that host's agent runs
the round trip; across hosts, the peer's host serves (its sockperf server up
first) and the client's host runs the client, coordinated through
rtkvm.api.routes.agent_measurements, and both halves' results are kept
(``result``, ``peer_result``). An instance takes part in one queued or
running measurement at a time. A measurement of an
instance on a waived host is allowed and says so (``rt_waiver``). Create,
list, show, delete (idempotent; a running one stays until its agent
reports). Must not run anything itself: agents do, through
rtkvm.api.routes.agent_measurements.
"""

from __future__ import annotations

import ipaddress
import json
import uuid

from fastapi import APIRouter, Query, Response
from sqlalchemy import or_, select, tuple_
from sqlalchemy.orm import Session

from rtkvm.api.deps import Principal, ServicesDep, UserDep
from rtkvm.api.errors import ApiError
from rtkvm.api.views import network_named
from rtkvm.api.views_measure import (
    BUSY_STATES,
    instance_ref,
    measurement_for,
    measurement_out,
)
from rtkvm.db.models import Host, Instance, InstanceNetwork, Measurement, Network, Qualification
from rtkvm.errors import InputError
from rtkvm.net.address import host_interface
from rtkvm.wire.base import PAGE_MAX
from rtkvm.wire.measure import (
    CyclictestParamsIn,
    MeasurementCreate,
    MeasurementOut,
    RttParamsIn,
)
from rtkvm.wire.uuids import is_uuid

router = APIRouter(prefix="/v1/measurements", tags=["measurements"])


@router.post("", status_code=201)
def create_measurement(
    body: MeasurementCreate, services: ServicesDep, caller: UserDep
) -> MeasurementOut:
    """Queue a measurement for the agent of the measured instance's host."""
    params = _params(body)
    now = services.clock()
    with services.db.write() as s:
        server = instance_ref(s, body.server, caller)
        peer = instance_ref(s, body.peer, caller) if body.peer is not None else None
        if peer is not None and peer.id == server.id:
            raise ApiError(
                422,
                f"server and peer are both instance {server.name} ({server.id}): "
                "rtt needs two instances, a client (server) and an answering peer",
            )
        _lock(s, server, peer)
        role = "client" if peer is not None else "measured instance"
        _check_measurable(server, role)
        network_id: int | None = None
        peer_host_id: int | None = None
        if peer is not None:
            _check_measurable(peer, "peer")
            peer_host_id = peer.host_id if peer.host_id != server.host_id else None
            tenant = _tenants_pair(server, peer)
            network = _shared_network(s, server, peer, body.network, caller, any_nic=tenant)
            network_id = network.id
            params = _own_addresses(s, body, params, server, peer, network, tenant=tenant)
        assert server.host_id is not None
        check_idle(s, server, peer)
        if body.qualification is not None:
            _check_for_qualification(s, body.qualification, caller, server, peer, network_id)
        m = Measurement(
            id=str(uuid.uuid4()),
            project_id=server.project_id,
            user_id=caller.user_id,
            kind=body.kind,
            instance_id=server.id,
            peer_instance_id=peer.id if peer is not None else None,
            network_id=network_id,
            host_id=server.host_id,
            params=json.dumps(params),
            state="queued",
            created_at=now,
            qualification_id=body.qualification.lower() if body.qualification else None,
            peer_host_id=peer_host_id,
            peer_state="queued" if peer_host_id is not None else None,
        )
        s.add(m)
        s.flush()
        return measurement_out(s, m)


@router.get("")
def list_measurements(
    services: ServicesDep,
    caller: UserDep,
    all_projects: bool = Query(default=False, description="admins: every project"),
    limit: int = Query(default=PAGE_MAX, ge=1, le=PAGE_MAX, description="at most this many"),
    marker: str | None = Query(
        default=None, max_length=36, description="the id of the last one of the previous page"
    ),
) -> list[MeasurementOut]:
    """The caller's project's measurements (an admin's: every project's), newest first, a
    page at a time (``limit``, then ``marker`` = the last id seen)."""
    with services.db.read() as s:
        query = select(Measurement)
        if not (caller.is_admin and all_projects):
            query = query.where(Measurement.project_id == caller.project_id)
        if marker is not None:
            last = s.get(Measurement, marker.lower()) if is_uuid(marker) else None
            if last is None:
                raise ApiError(400, f"marker {marker!r} is no measurement: give the last id seen")
            query = query.where(
                tuple_(Measurement.created_at, Measurement.id) < tuple_(last.created_at, last.id)
            )
        query = query.order_by(Measurement.created_at.desc(), Measurement.id.desc()).limit(limit)
        return [measurement_out(s, m) for m in s.scalars(query)]


@router.get("/{measurement_id}")
def show_measurement(measurement_id: str, services: ServicesDep, caller: UserDep) -> MeasurementOut:
    """One measurement, with its result once its agent reported it done."""
    with services.db.read() as s:
        return measurement_out(s, measurement_for(s, measurement_id, caller))


@router.delete("/{measurement_id}", status_code=204)
def delete_measurement(measurement_id: str, services: ServicesDep, caller: UserDep) -> Response:
    """Idempotent: 204 for an unknown or already deleted one; 409 while it runs."""
    if not is_uuid(measurement_id):
        return Response(status_code=204)
    with services.db.write() as s:
        m = s.get(Measurement, measurement_id.lower())
        if m is None or (not caller.is_admin and m.project_id != caller.project_id):
            return Response(status_code=204)  # as if unknown: ids of others do not leak
        running = m.state == "running" or m.peer_state in ("running", "serving")
        if running:
            host = s.get(Host, m.host_id if m.state == "running" else m.peer_host_id)
            raise ApiError(
                409,
                f"measurement {m.id} is running on host {host.name if host else '?'}: it can "
                "be deleted once its agent reports it done or error; watch it with "
                f"`rtkvm cloud measure show {m.id}`",
            )
        s.delete(m)
    return Response(status_code=204)


def _check_for_qualification(
    session: Session,
    ident: str,
    caller: Principal,
    server: Instance,
    peer: Instance | None,
    network_id: int | None,
) -> None:
    """A measurement for a qualification: an admin's, of probe servers on its host, while
    it runs; a round trip on one of the networks it must cover."""
    if not caller.is_admin:
        raise ApiError(403, "qualification: only an admin qualifies hosts; remove it")
    q = session.get(Qualification, ident.lower()) if is_uuid(ident) else None
    if q is None:
        raise ApiError(422, f"qualification {ident!r} not found: give a running one's id")
    if q.state != "running":
        raise ApiError(409, f"qualification {q.id} is {q.state}: begin a new one")
    for inst in (server, peer):
        if inst is None:
            continue
        if inst.host_id != q.host_id:
            raise ApiError(
                422,
                f"instance {inst.name} is not on the host qualification {q.id} qualifies: "
                "create the probe servers there (`server create --host`)",
            )
        if inst.image_id is not None:
            raise ApiError(
                422,
                f"instance {inst.name} boots its tenant's image: a qualification measures "
                "rtkvm's probe servers (created without --image)",
            )
    if network_id is not None:
        net = session.get(Network, network_id)
        if net is None or net.name not in json.loads(q.networks):
            raise ApiError(
                422,
                f"network {net.name if net else network_id} was not wired to the host when "
                f"qualification {q.id} began: it measures {q.networks}",
            )


def _params(body: MeasurementCreate) -> dict[str, object]:
    """The kind's parameters with defaults; 422 for the other kind's fields."""
    if body.kind == "cyclictest":
        for field in ("peer", "network", "rtt"):
            if getattr(body, field) is not None:
                raise ApiError(
                    422, f"{field}: only rtt measurements take it; remove it for cyclictest"
                )
        return (body.cyclictest or CyclictestParamsIn()).model_dump()
    if body.cyclictest is not None:
        raise ApiError(422, "cyclictest: only cyclictest measurements take it; remove it for rtt")
    if body.peer is None:
        raise ApiError(
            422, "peer: rtt needs the instance that answers (peer) besides the client (server)"
        )
    return (body.rtt or RttParamsIn()).model_dump()  # addresses: checked by _own_addresses


def _tenants_pair(client: Instance, peer: Instance) -> bool:
    """True for two servers on their tenants' images (measured through their guest agents),
    False for two probe servers; 409 for one of each."""
    images = (client.image_id is not None, peer.image_id is not None)
    if images[0] == images[1]:
        return images[0]
    tenant, probe = (client, peer) if images[0] else (peer, client)
    raise ApiError(
        409,
        f"instance {tenant.name} ({tenant.id}) runs its tenant's own image and {probe.name} "
        f"({probe.id}) is a probe server: a round trip runs between two probe servers (booted "
        "afresh into rtkvm's probe kernel) or between two servers on their tenants' images "
        "(through their guest agents, never rebooted); pick two of one kind",
    )


def _own_addresses(
    session: Session,
    body: MeasurementCreate,
    params: dict[str, object],
    client: Instance,
    peer: Instance,
    network: Network,
    *,
    tenant: bool,
) -> dict[str, object]:
    """An rtt runs on the addresses the instances' users gave their NIC on the network.
    Between probe servers the request may name others, and the defaults stand in for a NIC
    without one; a tenant's system keeps its own, which it must have."""
    given = body.rtt.model_fields_set if body.rtt is not None else set()
    chosen = dict(params)
    for field, inst in (("client_address", client), ("server_address", peer)):
        own = session.scalar(
            select(InstanceNetwork.address).where(
                InstanceNetwork.instance_id == inst.id, InstanceNetwork.network_id == network.id
            )
        )
        if tenant:
            _check_tenant_address(body, field, inst, network, own)
            chosen[field] = own
        elif own is not None and field not in given:
            chosen[field] = own
    rtt = RttParamsIn.model_validate(chosen)
    own = " (an instance's own address counts when none is given)" if chosen != params else ""
    _check_addresses(rtt, hint=own)
    return rtt.model_dump()


def _check_tenant_address(
    body: MeasurementCreate, field: str, inst: Instance, network: Network, own: str | None
) -> None:
    if own is None:
        raise ApiError(
            422,
            f"instance {inst.name} has no address on network {network.name}: a round trip "
            "between tenants' systems runs on the addresses their users gave, and rtkvm never "
            f"sets one in a tenant's guest; create the server with --network "
            f"{network.name},ip=ADDR/PREFIX",
        )
    asked = getattr(body.rtt, field) if body.rtt and field in body.rtt.model_fields_set else None
    if asked is not None and _interface(field, asked) != _interface(field, own):
        raise ApiError(
            422,
            f"rtt.{field}: instance {inst.name} runs its tenant's system with {own} on "
            f"{network.name}, which rtkvm does not change: remove rtt.{field}",
        )


def _interface(field: str, text: str) -> ipaddress.IPv4Interface:
    try:
        return host_interface(text)
    except InputError as exc:
        raise ApiError(422, f"rtt.{field}: {exc}") from None


def _check_addresses(rtt: RttParamsIn, hint: str = "") -> None:
    client = _interface("client_address", rtt.client_address)
    server = _interface("server_address", rtt.server_address)
    if client.network != server.network:
        raise ApiError(
            422,
            f"rtt addresses {rtt.client_address} and {rtt.server_address} are in different "
            "subnets: give both the same subnet (same prefix) so the guests reach each "
            f"other{hint}",
        )
    if client.ip == server.ip:
        raise ApiError(
            422,
            f"rtt client_address and server_address are both {client.ip}: give two addresses{hint}",
        )


def _lock(session: Session, server: Instance, peer: Instance | None) -> None:
    """Lock the instances' rows (PostgreSQL) and read them afresh: concurrent creates queue."""
    ids = sorted({server.id} | ({peer.id} if peer is not None else set()))
    list(
        session.scalars(
            select(Instance)
            .where(Instance.id.in_(ids))
            .order_by(Instance.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def _check_measurable(inst: Instance, role: str) -> None:
    if inst.state != "active" or inst.host_id is None:
        raise ApiError(
            409,
            f"{role} instance {inst.name} ({inst.id}) is {inst.state}: only an active instance "
            "placed on a host can be measured; wait until `rtkvm cloud server show` says active",
        )
    if inst.task is not None:
        raise ApiError(
            409,
            f"{role} instance {inst.name} ({inst.id}) is {inst.task}: measure it when that is "
            "done (`rtkvm cloud server show` shows no task)",
        )


def _networks(session: Session, inst: Instance) -> list[Network]:
    """The instance's networks in NIC order (eth0 first)."""
    return list(
        session.scalars(
            select(Network)
            .join(InstanceNetwork, InstanceNetwork.network_id == Network.id)
            .where(InstanceNetwork.instance_id == inst.id)
            .order_by(InstanceNetwork.position)
        )
    )


def _shared_network(
    session: Session,
    client: Instance,
    peer: Instance,
    name: str | None,
    caller: Principal,
    *,
    any_nic: bool,
) -> Network:
    """The network named (default: the client's first), which both must have: as their
    first NIC for probe servers (the probe configures only eth0), as any NIC with
    ``any_nic`` (a tenant's cloud-init configures every NIC)."""
    client_nets = _networks(session, client)
    if name is None:
        if not client_nets:
            raise ApiError(
                422,
                f"client instance {client.name} has no network: rtt runs over a network both "
                "instances are attached to as their first NIC; create them with --network",
            )
        chosen = client_nets[0]
    else:
        chosen = network_named(session, name, caller)
    for inst, nets in ((client, client_nets), (peer, _networks(session, peer))):
        ids = [n.id for n in nets]
        if chosen.id not in ids:
            names = ", ".join(n.name for n in nets) or "none"
            raise ApiError(
                422,
                f"instance {inst.name} is not attached to network {chosen.name} (its networks: "
                f"{names}): pick a network both instances have as their first NIC",
            )
        position = ids.index(chosen.id)
        if position != 0 and not any_nic:
            raise ApiError(
                422,
                f"network {chosen.name} is NIC {position} (eth{position}) of instance "
                f"{inst.name}, but the guest image configures only eth0 (its first network, "
                f"{nets[0].name}): measure over a network that is the first NIC of both",
            )
    return chosen


def check_idle(session: Session, server: Instance, peer: Instance | None) -> None:
    """An instance takes part in one queued or running measurement at a time."""
    for inst in (server, peer):
        if inst is None:
            continue
        busy = session.scalar(
            select(Measurement)
            .where(
                Measurement.state.in_(BUSY_STATES),
                or_(Measurement.instance_id == inst.id, Measurement.peer_instance_id == inst.id),
            )
            .order_by(Measurement.created_at)
            .limit(1)
        )
        if busy is not None:
            raise ApiError(
                409,
                f"instance {inst.name} ({inst.id}) already takes part in measurement {busy.id} "
                f"({busy.state}): wait for it (`rtkvm cloud measure show {busy.id}`)"
                + (" or delete it" if busy.state == "queued" else ""),
            )
