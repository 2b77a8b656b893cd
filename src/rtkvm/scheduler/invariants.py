"""The control plane's invariants, checked against the database as it is.

What every claim, release and quota change must keep true, whatever raced or
crashed:

- a pCPU slot is claimed once, and only by an instance that holds resources
  on that host;
- an instance holds resources (``rt_cores`` > 0) exactly while it is placed
  and not deleted, with one claim per core and one open usage record;
- each NUMA node's ``rt_used``, hugepage and 4k-page RAM counters equal the
  sum of what the instances on it hold, and lie between 0 and their totals;
- each project's counters equal the sum over its holding instances (and its
  image bytes the sizes of its active images), and its quotas are respected;
- a host has NUMA nodes exactly when its agent registered it (the
  scheduler's SQL tells registered hosts by that), its capacity summary
  (what the scheduler's SQL prefilter reads) matches its nodes, and its
  ``disk_gb_used`` is the sum of its holding instances' disks.

:func:`violations` returns one line per broken invariant (empty: all hold).
It is used after every concurrency and crash test and by operators
(``rtkvm cloud check``). This module must not change anything.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from rtkvm.db.models import CpuClaim, Host, HostNode, Image, Instance, Project, UsageRecord
from rtkvm.errors import InputError
from rtkvm.scheduler.claim import HOLDING
from rtkvm.scheduler.claim_sql import CAPACITY_SUMMARY as SUMMARY
from rtkvm.wire.lifecycle import PLACED_STATES
from rtkvm.wire.placement import PlacementDoc
from rtkvm.wire.topology import HP_1G_KIB, HP_2M_KIB

"""States in which an instance may hold resources (``error`` until it is deleted)."""


def violations(session: Session) -> list[str]:
    """Every broken invariant, one line each, naming the rows involved."""
    out: list[str] = []
    holding = list(session.scalars(select(Instance).where(HOLDING)))
    out += _instances(session, holding)
    out += _claims(session, {i.id: i for i in holding})
    out += _nodes(session, holding)
    out += _projects(session, holding)
    out += _hosts(session, holding)
    return out


def _instances(session: Session, holding: list[Instance]) -> list[str]:
    out = []
    claims = Counter(
        dict(
            session.execute(
                select(CpuClaim.instance_id, func.count()).group_by(CpuClaim.instance_id)
            ).all()
        )
    )
    open_records = Counter(
        dict(
            session.execute(
                select(UsageRecord.instance_id, func.count())
                .where(UsageRecord.ended_at.is_(None))
                .group_by(UsageRecord.instance_id)
            ).all()
        )
    )
    held = {i.id for i in holding}
    for inst in holding:
        if inst.state not in PLACED_STATES or inst.host_id is None:
            out.append(
                f"instance {inst.id} holds {inst.rt_cores} cores and {inst.shared_vcpus} "
                f"shared vCPUs while {inst.state}"
            )
        if claims[inst.id] != inst.rt_cores:
            out.append(
                f"instance {inst.id} holds {inst.rt_cores} cores but {claims[inst.id]} pCPU claims"
            )
        if open_records[inst.id] != 1:
            out.append(
                f"instance {inst.id} holds resources with {open_records[inst.id]} open "
                "usage records"
            )
    for instance_id, count in sorted(open_records.items()):
        if instance_id not in held:
            out.append(f"instance {instance_id} holds nothing but has {count} open usage records")
    for instance_id, count in sorted(claims.items()):
        if instance_id not in held:
            out.append(f"instance {instance_id} holds nothing but {count} pCPU claims")
    negative = session.scalars(
        select(Instance.id).where(or_(Instance.rt_cores < 0, Instance.shared_vcpus < 0))
    ).all()
    out += [f"instance {i} has negative rt_cores or shared_vcpus" for i in negative]
    return out


def _claims(session: Session, holding: dict[str, Instance]) -> list[str]:
    out = []
    shares = dict(session.execute(select(Host.id, Host.pcpu_share)).all())
    per_pcpu: Counter[tuple[int, int]] = Counter()
    for claim in session.scalars(select(CpuClaim)):
        per_pcpu[(claim.host_id, claim.pcpu)] += 1
        inst = holding.get(claim.instance_id)
        if inst is not None and inst.host_id != claim.host_id:
            out.append(
                f"pCPU {claim.pcpu} of host {claim.host_id} is claimed by instance "
                f"{claim.instance_id}, which is on host {inst.host_id}"
            )
        if claim.slot >= max(shares.get(claim.host_id, 1), 1):
            out.append(
                f"pCPU {claim.pcpu} of host {claim.host_id} has slot {claim.slot} beyond its share"
            )
    for (host_id, pcpu), count in sorted(per_pcpu.items()):
        if count > max(shares.get(host_id, 1), 1):
            out.append(f"pCPU {pcpu} of host {host_id} is claimed {count} times")
    return out


def _memory(inst: Instance) -> tuple[int, dict[int, int], dict[int, int]]:
    """Page size, hugepages per node and 4k-page RAM (MiB) per node the instance holds."""
    try:
        doc = PlacementDoc.parse(inst.placement)
    except InputError:
        return 0, {}, {}
    return doc.page_kib, doc.hugepages, doc.memory_mib


def _nodes(session: Session, holding: list[Instance]) -> list[str]:
    out = []
    claimed = Counter(
        {
            (h, n): c
            for h, n, c in session.execute(
                select(CpuClaim.host_id, CpuClaim.node, func.count()).group_by(
                    CpuClaim.host_id, CpuClaim.node
                )
            ).all()
        }
    )
    pages: dict[tuple[int, int], Counter[int]] = defaultdict(Counter)
    mib: Counter[tuple[int, int]] = Counter()
    for inst in holding:
        if inst.host_id is None:
            continue
        page_kib, per_node, mib_per_node = _memory(inst)
        for node_id, count in per_node.items():
            pages[(inst.host_id, node_id)][page_kib] += count
        for node_id, count in mib_per_node.items():
            mib[(inst.host_id, node_id)] += count
    for node in session.scalars(select(HostNode)):
        key = (node.host_id, node.node)
        where = f"host {node.host_id} node {node.node}"
        expected = {
            "rt_used": claimed[key],
            "hp2m_used": pages[key][HP_2M_KIB],
            "hp1g_used": pages[key][HP_1G_KIB],
            "mem_used": mib[key],
        }
        actual = {
            "rt_used": node.rt_used,
            "hp2m_used": node.hp2m_used,
            "hp1g_used": node.hp1g_used,
            "mem_used": node.mem_used,
        }
        totals = {
            "rt_used": node.rt_total,
            "hp2m_used": node.hp2m_total,
            "hp1g_used": node.hp1g_total,
            "mem_used": node.mem_total,
        }
        for field, want in expected.items():
            if actual[field] != want:
                out.append(f"{where}: {field} is {actual[field]}, its instances hold {want}")
            if not 0 <= actual[field] <= totals[field]:
                out.append(f"{where}: {field} {actual[field]} is outside 0..{totals[field]}")
    return out


def _projects(session: Session, holding: list[Instance]) -> list[str]:
    out = []
    cores: Counter[int] = Counter()
    count: Counter[int] = Counter()
    vcpus: Counter[int] = Counter()
    for inst in holding:
        cores[inst.project_id] += inst.rt_cores
        count[inst.project_id] += 1
        vcpus[inst.project_id] += inst.shared_vcpus
    stored: dict[int, int] = dict(
        session.execute(  # type: ignore[arg-type]
            select(Image.project_id, func.coalesce(func.sum(Image.size_bytes), 0))
            .where(Image.status == "active")
            .group_by(Image.project_id)
        ).all()
    )
    for project in session.scalars(select(Project)):
        name, p = f"project {project.name}", project
        if p.image_bytes_used != stored.get(p.id, 0):
            out.append(
                f"{name}: image_bytes_used is {p.image_bytes_used}, its active images take "
                f"{stored.get(p.id, 0)}"
            )
        if p.rt_cores_used != cores[p.id]:
            out.append(f"{name}: rt_cores_used is {p.rt_cores_used}, instances hold {cores[p.id]}")
        if p.instances_used != count[p.id]:
            out.append(f"{name}: instances_used is {p.instances_used}, {count[p.id]} hold")
        if p.shared_vcpus_used != vcpus[p.id]:
            out.append(
                f"{name}: shared_vcpus_used is {p.shared_vcpus_used}, instances hold {vcpus[p.id]}"
            )
        if p.quota_shared_vcpus is not None and p.shared_vcpus_used > p.quota_shared_vcpus:
            out.append(
                f"{name}: {p.shared_vcpus_used} shared vCPUs over its quota {p.quota_shared_vcpus}"
            )
        if p.quota_rt_cores is not None and p.rt_cores_used > p.quota_rt_cores:
            out.append(f"{name}: {p.rt_cores_used} RT cores over its quota of {p.quota_rt_cores}")
        if p.quota_instances is not None and p.instances_used > p.quota_instances:
            out.append(f"{name}: {p.instances_used} instances over its quota {p.quota_instances}")
    return out


def _hosts(session: Session, holding: list[Instance]) -> list[str]:
    out = []
    disks: Counter[int] = Counter()
    for inst in holding:
        if inst.host_id is not None:
            disks[inst.host_id] += inst.disk_gb or 0
    columns = [fn(expr).label(name) for name, (fn, expr) in SUMMARY.items()]
    per_host = {
        row.host_id: row
        for row in session.execute(
            select(HostNode.host_id, *columns).group_by(HostNode.host_id)
        ).all()
    }
    for host in session.scalars(select(Host)):
        row = per_host.get(host.id)
        if (row is not None) != (host.registered_at is not None):
            has = "has NUMA nodes" if row is not None else "has no NUMA nodes"
            out.append(f"host {host.name}: {has} but registered_at is {host.registered_at}")
        for name in SUMMARY:
            want = int(getattr(row, name) or 0) if row is not None else 0
            have = getattr(host, name)
            if have != want:
                out.append(f"host {host.name}: {name} is {have}, its nodes have {want}")
        if host.disk_gb_used != disks[host.id]:
            out.append(
                f"host {host.name}: disk_gb_used is {host.disk_gb_used}, its servers' disks "
                f"take {disks[host.id]}"
            )
    return out
