"""Lookups by name and the conversion of rows to response bodies.

Lookups raise 404 with a hint; views turn ORM rows into schema objects.
Visibility rules (what a member may see) live here too, in one place:
a member sees its project's instances and private networks, and shared
networks. This module must not write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from rtkvm.api.deps import Principal
from rtkvm.api.errors import ApiError, not_found
from rtkvm.api.liveness import host_status
from rtkvm.api.proofs import Proof, last_cyclictests
from rtkvm.api.qualify import last_of_hosts
from rtkvm.api.rtstate import HostRt, rt_state
from rtkvm.api.views_images import image_ref
from rtkvm.db.models import (
    Host,
    HostDetail,
    HostNode,
    Image,
    Instance,
    InstanceConsole,
    InstanceNetwork,
    Network,
    Project,
    UnknownResource,
    User,
)
from rtkvm.domain.placement import floating_of
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.scheduler.claim import parse_host
from rtkvm.seed.nocloud import hostname_of
from rtkvm.wire import schemas
from rtkvm.wire.guest import AgentInstance, InstanceOut, LastProof, NetworkPort
from rtkvm.wire.keypairs import SeedDoc
from rtkvm.wire.node import DataplaneDoc
from rtkvm.wire.placement import PlacementDoc
from rtkvm.wire.qualify import HostQualification
from rtkvm.wire.uuids import is_uuid


def project_named(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise not_found("project", name, " (list them with `rtkvm cloud project list`)")
    return project


def owner_project_id(session: Session, named: str | None, caller: Principal, what: str) -> int:
    """The project a new ``what`` goes into: the caller's, or (admins only) the one named."""
    if named is None:
        assert caller.project_id is not None
        return caller.project_id
    if not caller.is_admin and named != caller.project_name:
        raise ApiError(403, f"only an admin may create {what} in another project")
    return project_named(session, named).id


def user_named(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise not_found("user", name)
    return user


def host_named(session: Session, name: str) -> Host:
    host = session.scalar(select(Host).where(Host.name == name))
    if host is None:
        raise not_found("host", name, " (list them with `rtkvm cloud host list`)")
    return host


def visible_networks(caller: Principal) -> ColumnElement[bool]:
    """A WHERE clause: the networks the caller may see and attach to."""
    if caller.is_admin:
        return Network.id.is_not(None)
    return or_(Network.shared.is_(True), Network.project_id == caller.project_id)


def network_named(
    session: Session,
    name: str,
    caller: Principal,
    *,
    for_use: bool = False,
    exclusive: bool = False,
) -> Network:
    """The network if the caller may see it. ``for_use``: locked against deletion
    (FOR SHARE) until the transaction ends, for a create that attaches it;
    ``exclusive``: FOR UPDATE, for a create that takes an address on it."""
    query = select(Network).where(Network.name == name, visible_networks(caller))
    if for_use or exclusive:
        query = query.with_for_update(read=not exclusive)
    net = session.scalar(query)
    if net is None:
        raise not_found(
            "network", name, " (list the ones you may use with `rtkvm cloud network list`)"
        )
    return net


def address_holder(session: Session, network_id: int, address: str) -> Instance | None:
    """The live instance whose NIC on the network has ``address``'s IP, or None.

    Deleted instances hold nothing, nor do creates refused before placement (an
    error without a host): a user retries with the same address at once."""
    ip = address.split("/", 1)[0]
    return session.scalar(
        select(Instance)
        .join(InstanceNetwork, InstanceNetwork.instance_id == Instance.id)
        .where(
            InstanceNetwork.network_id == network_id,
            InstanceNetwork.address.startswith(f"{ip}/", autoescape=True),
            Instance.state != "deleted",
            ~((Instance.state == "error") & Instance.host_id.is_(None)),
        )
        .limit(1)
    )


def locked_instance(session: Session, instance_id: str) -> Instance | None:
    """The instance row (any case of its UUID), locked until the transaction ends, so that
    two changes of one instance never both act on the state they read; None: unknown."""
    if not is_uuid(instance_id):
        return None
    return session.get(Instance, instance_id.lower(), with_for_update=True)


def instance_for(session: Session, instance_id: str, caller: Principal) -> Instance:
    """The instance if the caller may see it; 404 (not 403) so ids do not leak."""
    if not is_uuid(instance_id):
        raise not_found("instance", instance_id, " (instance ids are UUIDs)")
    inst = session.get(Instance, instance_id.lower())
    if inst is None or inst.state == "deleted":
        raise not_found("instance", instance_id)
    if not caller.is_admin and inst.project_id != caller.project_id:
        raise not_found("instance", instance_id)
    return inst


def project_out(p: Project) -> schemas.ProjectOut:
    return schemas.ProjectOut(
        id=p.id,
        name=p.name,
        quota_rt_cores=p.quota_rt_cores,
        quota_instances=p.quota_instances,
        rt_cores_used=p.rt_cores_used,
        instances_used=p.instances_used,
        quota_shared_vcpus=p.quota_shared_vcpus,
        shared_vcpus_used=p.shared_vcpus_used,
        quota_image_bytes=p.quota_image_bytes,
        image_bytes_used=p.image_bytes_used,
    )


def host_out(session: Session, host: Host, now: float, timeout: float) -> schemas.HostOut:
    return hosts_out(session, [host], now, timeout)[0]


def hosts_out(
    session: Session, hosts: Sequence[Host], now: float, timeout: float
) -> list[schemas.HostOut]:
    """Hosts with their nodes: one query for the nodes of every IN_CHUNK hosts."""
    ids = [h.id for h in hosts]
    nodes: dict[int, list[HostNode]] = {i: [] for i in ids}
    for start in range(0, len(ids), IN_CHUNK):
        for n in session.scalars(
            select(HostNode)
            .where(HostNode.host_id.in_(ids[start : start + IN_CHUNK]))
            .order_by(HostNode.host_id, HostNode.node)
        ):
            nodes[n.host_id].append(n)
    proven = last_of_hosts(session, hosts)
    return [_host_out(h, nodes[h.id], now, timeout, proven.get(h.id)) for h in hosts]


def _host_out(
    host: Host,
    nodes: list[HostNode],
    now: float,
    timeout: float,
    qualification: HostQualification | None,
) -> schemas.HostOut:
    return schemas.HostOut(
        name=host.name,
        status=host_status(host, now, timeout),  # type: ignore[arg-type]
        doctor_verdict=host.doctor_verdict,
        doctor_failed=json.loads(host.doctor_failed),
        dataplane_state=host.dataplane_state,
        dataplane=DataplaneDoc.model_validate_json(host.dataplane) if host.dataplane else None,
        physnets=json.loads(host.physnets),
        heartbeat_at=host.heartbeat_at,
        registered_at=host.registered_at,
        rt_waiver=host.rt_waiver,
        pcpu_share=host.pcpu_share,
        engine=host.engine,  # type: ignore[arg-type]
        tuning_drift=None if host.tuning_drift is None else json.loads(host.tuning_drift),
        console=host.console_address is not None,
        qualified=host.qualified_at is not None,
        qualification=qualification,
        disk_gb_total=host.disk_gb_total,
        disk_gb_used=host.disk_gb_used,
        nodes=[
            schemas.NodeOut(
                node=n.node,
                rt_pcpus=n.rt_pcpus,
                rt_total=n.rt_total,
                rt_used=n.rt_used,
                hugepages_2m_total=n.hp2m_total,
                hugepages_2m_used=n.hp2m_used,
                hugepages_1g_total=n.hp1g_total,
                hugepages_1g_used=n.hp1g_used,
                memory_4k_mib_total=n.mem_total,
                memory_4k_mib_used=n.mem_used,
            )
            for n in nodes
        ],
    )


def unknown_out(row: UnknownResource) -> schemas.UnknownResourceOut:
    return schemas.UnknownResourceOut(
        kind=row.kind,  # type: ignore[arg-type]
        name=row.name,
        uuid=row.uuid,
        running=row.running,
        verdict=row.verdict,  # type: ignore[arg-type]
        hint=row.hint,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
    )


def network_out(session: Session, net: Network) -> schemas.NetworkOut:
    project = session.get(Project, net.project_id) if net.project_id is not None else None
    return schemas.NetworkOut(
        name=net.name,
        physnet=net.physnet,
        vlan=net.vlan,
        shared=net.shared,
        project=project.name if project else None,
    )


@dataclass(frozen=True)
class _PageContext:
    """What a page of instances refers to, read once for the whole page."""

    ports: dict[str, list[NetworkPort]]
    projects: dict[int, str]
    hosts: dict[int, str]
    readiness: dict[int, HostRt] = field(default_factory=dict)
    proofs: dict[str, Proof] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)


IN_CHUNK = 500
"""Ids per IN (...) list."""


def _page_context(session: Session, insts: Sequence[Instance]) -> _PageContext:
    """Networks, project names and host names of a page of instances: three queries per
    500 instances, not three per instance."""
    ids = [i.id for i in insts]
    ports: dict[str, list[NetworkPort]] = {i: [] for i in ids}
    for start in range(0, len(ids), IN_CHUNK):
        rows = session.execute(
            select(
                InstanceNetwork.instance_id,
                Network.name,
                Network.physnet,
                Network.vlan,
                InstanceNetwork.address,
            )
            .join(Network, InstanceNetwork.network_id == Network.id)
            .where(InstanceNetwork.instance_id.in_(ids[start : start + IN_CHUNK]))
            .order_by(InstanceNetwork.instance_id, InstanceNetwork.position)
        )
        for inst_id, name, physnet, vlan, address in rows:
            ports[inst_id].append(
                NetworkPort(name=name, physnet=physnet, vlan=vlan, address=address)
            )
    project_ids = sorted({i.project_id for i in insts})
    host_ids = sorted({i.host_id for i in insts if i.host_id is not None})
    projects = dict(
        session.execute(select(Project.id, Project.name).where(Project.id.in_(project_ids))).all()
    )
    readiness = {
        hid: HostRt(name, verdict, tuple(json.loads(failed)), waiver)
        for hid, name, verdict, failed, waiver in session.execute(
            select(
                Host.id, Host.name, Host.doctor_verdict, Host.doctor_failed, Host.rt_waiver
            ).where(Host.id.in_(host_ids))
        )
    }
    hosts = {hid: rt.name for hid, rt in readiness.items()}
    proofs = {p.instance_id: p for p in last_cyclictests(session, ids)} if ids else {}
    image_ids = sorted({i.image_id for i in insts if i.image_id is not None})
    images = {img.id: img for img in session.scalars(select(Image).where(Image.id.in_(image_ids)))}
    return _PageContext(ports, projects, hosts, readiness, proofs, images)


def instance_out(session: Session, inst: Instance) -> InstanceOut:
    return instances_out(session, [inst])[0]


def instance_out_known(
    inst: Instance,
    project: str,
    host: str | None,
    ports: list[NetworkPort],
    image: Image | None = None,
) -> InstanceOut:
    """An instance's answer from what the caller already holds (a create that just placed
    it), without reading it back."""
    page = _PageContext(
        {inst.id: ports},
        {inst.project_id: project},
        {inst.host_id: host} if inst.host_id is not None and host is not None else {},
        images={image.id: image} if image is not None else {},
    )
    return InstanceOut.model_validate(_instance_fields(inst, page))


def instances_out(session: Session, insts: Sequence[Instance]) -> list[InstanceOut]:
    page = _page_context(session, insts)
    return [InstanceOut.model_validate(_instance_fields(i, page)) for i in insts]


def agent_instance(session: Session, inst: Instance) -> AgentInstance:
    return agent_instances(session, [inst])[0]


def agent_instances(session: Session, insts: Sequence[Instance]) -> list[AgentInstance]:
    page = _page_context(session, insts)
    wanted = _consoles_wanted(session, [i.id for i in insts])
    return [_agent_instance(session, i, page, i.id in wanted) for i in insts]


def _consoles_wanted(session: Session, ids: list[str]) -> set[str]:
    """Instances whose console log a user asked for since their agent last sent it."""
    found: set[str] = set()
    for start in range(0, len(ids), IN_CHUNK):
        found.update(
            session.scalars(
                select(InstanceConsole.instance_id).where(
                    InstanceConsole.instance_id.in_(ids[start : start + IN_CHUNK]),
                    InstanceConsole.requested_at.is_not(None),
                    or_(
                        InstanceConsole.taken_at.is_(None),
                        InstanceConsole.taken_at < InstanceConsole.requested_at,
                    ),
                )
            )
        )
    return found


def _agent_instance(
    session: Session, inst: Instance, page: _PageContext, console_wanted: bool
) -> AgentInstance:
    fields = _instance_fields(inst, page)
    spec = json.loads(inst.spec)
    fields["spec"] = spec
    fields["console_wanted"] = console_wanted
    image = page.images.get(inst.image_id) if inst.image_id is not None else None
    fields["image_ref"] = image_ref(image) if image is not None else None
    if image is not None and inst.state == "building":
        fields["seed"] = SeedDoc(
            hostname=hostname_of(inst.name),
            public_keys=[inst.public_key] if inst.public_key else [],
            user_data=inst.user_data,
        )
    fields["placement"] = _complete(session, inst, PlacementDoc.parse(inst.placement), spec)
    return AgentInstance.model_validate(fields)


def _complete(
    session: Session, inst: Instance, doc: PlacementDoc, spec: dict[str, object]
) -> PlacementDoc:
    """A placement stored before the floating CPUs were kept gets them from its host's
    stored plan, by the placement module's own rule."""
    if not doc.placed or doc.floating_cpus is not None or inst.host_id is None:
        return doc
    detail = session.get(HostDetail, inst.host_id)
    if detail is None:
        return doc
    topology, plan = parse_host(detail.topology, detail.plan)
    vcpus, cpus = floating_of(RtGuestSpec.model_validate(spec), plan, topology, doc.cell_nodes[0])
    return doc.model_copy(update={"floating_vcpus": str(vcpus), "floating_cpus": str(cpus)})


def _instance_fields(inst: Instance, page: _PageContext) -> dict[str, object]:
    doc = PlacementDoc.parse(inst.placement)
    return {
        "id": inst.id,
        "name": inst.name,
        "project": page.projects.get(inst.project_id, ""),
        "flavor": inst.flavor_name,
        "state": inst.state,
        "fault": inst.fault,
        "host": page.hosts.get(inst.host_id) if inst.host_id is not None else None,
        "task": inst.task,
        "rt_cores": inst.rt_cores,
        "vcpu_pins": [list(pin) for pin in doc.vcpu_pins],
        "emulator_cpus": doc.emulator_cpus,
        "cell_nodes": doc.cell_nodes,
        "floating_vcpus": doc.floating_vcpus or "",
        "floating_cpus": doc.floating_cpus or "",
        "shared_vcpus": inst.shared_vcpus,
        "networks": page.ports[inst.id],
        "created_at": inst.created_at,
        "updated_at": inst.updated_at,
        "rt_waiver": inst.rt_waiver,
        "image": page.images[inst.image_id].name if inst.image_id in page.images else None,
        "disk_gb": inst.disk_gb,
        "key_name": inst.key_name,
        **_rt_fields(inst, page),
    }


def _rt_fields(inst: Instance, page: _PageContext) -> dict[str, object]:
    detail = json.loads(inst.rt_detail) if inst.rt_detail else {}
    host = page.readiness.get(inst.host_id) if inst.host_id is not None else None
    # a host's readiness speaks for the guests on its RT pCPUs, not for shared ones
    placed = inst.state in ("active", "error") and inst.host_id is not None and inst.rt_cores > 0
    state, reasons = rt_state(
        inst.rt_state, list(detail.get("reasons", [])), host if placed else None
    )
    proof = page.proofs.get(inst.id)
    return {
        "rt_state": state,
        "rt_reasons": reasons,
        "rt_waived": detail.get("waived", {}),
        "rt_checked_at": inst.rt_checked_at,
        "last_proof": None
        if proof is None
        else LastProof(
            measurement=proof.measurement_id,
            finished_at=proof.finished_at,
            worst_us=proof.worst_us,
            emulated=proof.emulated,
        ),
    }
