"""The statements of a claim transaction, built once and run through ``Database.prepared``.

A create's claim runs about ten statements; building each with SQLAlchemy's
expression language on every call cost more than running it. Each function
here returns one Core statement with bound parameters (named in its
docstring); :func:`run` executes it inside the caller's session transaction
on the session's own connection, so the claim stays one atomic transaction
with the same locks and the same retry on a UNIQUE violation.

The capacity summary a host keeps for the scheduler's prefilter is defined
once, in :data:`CAPACITY_SUMMARY`, and written by :func:`capacity_update`.
This module must not decide where a guest goes (``domain.placement`` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import CursorResult, bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from rtkvm.db.engine import Database
from rtkvm.db.models import CpuClaim, Host, HostDetail, HostNode, Instance, Project, UsageRecord

CAPACITY_SUMMARY: dict[str, tuple[Any, Any]] = {
    "rt_free": (func.sum, HostNode.rt_total - HostNode.rt_used),
    "node_free_max": (func.max, HostNode.rt_total - HostNode.rt_used),
    "hp2m_free_max": (func.max, HostNode.hp2m_total - HostNode.hp2m_used),
    "hp1g_free_max": (func.max, HostNode.hp1g_total - HostNode.hp1g_used),
    "mem_free_max": (func.max, HostNode.mem_total - HostNode.mem_used),
}
"""Each capacity summary column of a host, as an aggregate over its nodes (0: none)."""


def run(
    db: Database,
    session: Session,
    name: str,
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> CursorResult[Any]:
    """Execute statement ``name`` of this module in ``session``'s transaction (a sequence
    of value sets: once per set, as one executemany)."""
    statement = db.prepared(("claim", name), STATEMENTS[name])
    conn = session.connection()
    if isinstance(values, Mapping):
        return conn.exec_driver_sql(statement.sql, statement.bind(values))
    rows = [statement.bind(v) for v in values]
    return conn.exec_driver_sql(statement.sql, rows)


def host_for_claim() -> Executable:
    """host: the host's verdict, waiver, pCPU share, topology and plan; locks its row."""
    return (
        select(Host.doctor_verdict, Host.rt_waiver, Host.pcpu_share, HostDetail.topology,
               HostDetail.plan)
        .join(HostDetail, HostDetail.host_id == Host.id)
        .where(Host.id == bindparam("host"))
        .with_for_update(of=Host)
    )  # fmt: skip


def node_counters() -> Executable:
    """host: each node's RT pCPU and hugepage counters."""
    return select(
        HostNode.node,
        HostNode.hp2m_total,
        HostNode.hp2m_used,
        HostNode.hp1g_total,
        HostNode.hp1g_used,
    ).where(HostNode.host_id == bindparam("host"))


def claimed_slots() -> Executable:
    """host: every claimed (pCPU, slot) of the host."""
    return select(CpuClaim.pcpu, CpuClaim.slot).where(CpuClaim.host_id == bindparam("host"))


def insert_claim() -> Executable:
    """host, pcpu, slot, node, instance: one claim row (the UNIQUE triple is the lock)."""
    return insert(CpuClaim).values(
        host_id=bindparam("host"),
        pcpu=bindparam("pcpu"),
        slot=bindparam("slot"),
        node=bindparam("node"),
        instance_id=bindparam("instance"),
    )


def take_node() -> Executable:
    """host, node, n, p2, p1, m: take pCPUs, pages and RAM from a node, only if they fit."""
    n: Any = bindparam("n")
    p2: Any = bindparam("p2")
    p1: Any = bindparam("p1")
    m: Any = bindparam("m")
    return (
        update(HostNode)
        .where(
            HostNode.host_id == bindparam("host"),
            HostNode.node == bindparam("node"),
            HostNode.rt_used + n <= HostNode.rt_total,
            HostNode.hp2m_used + p2 <= HostNode.hp2m_total,
            HostNode.hp1g_used + p1 <= HostNode.hp1g_total,
            HostNode.mem_used + m <= HostNode.mem_total,
        )
        .values(
            rt_used=HostNode.rt_used + n,
            hp2m_used=HostNode.hp2m_used + p2,
            hp1g_used=HostNode.hp1g_used + p1,
            mem_used=HostNode.mem_used + m,
        )
    )


def take_disk() -> Executable:
    """host, disk: promise a server's disk GiB on the host, only if they fit (a host that
    never reported its disk space has NULL and takes none)."""
    disk: Any = bindparam("disk")
    return (
        update(Host)
        .where(
            Host.id == bindparam("host"),
            Host.disk_gb_total.is_not(None),
            Host.disk_gb_used + disk <= Host.disk_gb_total,
        )
        .values(disk_gb_used=Host.disk_gb_used + disk)
    )


def _summary() -> dict[str, Any]:
    of_host = HostNode.host_id == Host.id
    return {
        name: select(func.coalesce(fn(expr), 0)).where(of_host).scalar_subquery()
        for name, (fn, expr) in CAPACITY_SUMMARY.items()
    }


def capacity_update() -> Executable:
    """host: recompute the host's capacity summary from its node rows."""
    return update(Host).where(Host.id == bindparam("host")).values(_summary())


def capacity_update_all() -> Executable:
    """(none): recompute every host's capacity summary (a migration, a seeded benchmark)."""
    return update(Host).values(_summary())


def take_quota() -> Executable:
    """project, cores, vcpus: count the guest against its project, only within the quotas."""
    cores: Any = bindparam("cores")
    vcpus: Any = bindparam("vcpus")
    return (
        update(Project)
        .where(
            Project.id == bindparam("project"),
            (Project.quota_rt_cores.is_(None))
            | (Project.rt_cores_used + cores <= Project.quota_rt_cores),
            (Project.quota_instances.is_(None))
            | (Project.instances_used + 1 <= Project.quota_instances),
            (Project.quota_shared_vcpus.is_(None))
            | (Project.shared_vcpus_used + vcpus <= Project.quota_shared_vcpus),
        )
        .values(
            rt_cores_used=Project.rt_cores_used + cores,
            instances_used=Project.instances_used + 1,
            shared_vcpus_used=Project.shared_vcpus_used + vcpus,
        )
    )


def move_to_building() -> Executable:
    """instance, host, cores, vcpus, placement, waiver, now: scheduling -> building, placed."""
    return (
        update(Instance)
        .where(Instance.id == bindparam("instance"), Instance.state == "scheduling")
        .values(
            state="building",
            host_id=bindparam("host"),
            rt_cores=bindparam("cores"),
            shared_vcpus=bindparam("vcpus"),
            placement=bindparam("placement"),
            rt_waiver=bindparam("waiver"),
            updated_at=bindparam("now"),
        )
    )


def open_usage() -> Executable:
    """project, instance, cores, vcpus, now: the instance's usage record, open from now."""
    return insert(UsageRecord).values(
        project_id=bindparam("project"),
        instance_id=bindparam("instance"),
        rt_cores=bindparam("cores"),
        shared_vcpus=bindparam("vcpus"),
        started_at=bindparam("now"),
    )


STATEMENTS = {
    "host_for_claim": host_for_claim,
    "node_counters": node_counters,
    "claimed_slots": claimed_slots,
    "insert_claim": insert_claim,
    "take_node": take_node,
    "take_disk": take_disk,
    "capacity_update": capacity_update,
    "take_quota": take_quota,
    "move_to_building": move_to_building,
    "open_usage": open_usage,
}
