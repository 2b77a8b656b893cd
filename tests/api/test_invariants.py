"""The invariant checker (``rtkvm cloud check``) and the start-up recovery of stuck creates."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import update

from rtkvm.api.app import create_app
from rtkvm.api.testing import ADMIN_TOKEN, Cloud, FakeClock, expect
from rtkvm.db.models import Host, HostNode, Instance, Project
from rtkvm.scheduler.claim import STALE_SCHEDULING_FAULT
from rtkvm.settings import Settings


def _site(cloud: Cloud) -> tuple[object, str]:
    cloud.host("h1", nodes=1, cores_per_node=4)
    cloud.project("p1", quota_rt_cores=8)
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    return alice, vm["id"]


def test_a_consistent_database_passes_and_a_corrupted_one_is_named(
    cloud: Cloud, app: FastAPI
) -> None:
    _site(cloud)
    assert expect(cloud.admin.get("/v1/check"), 200) == {
        "ok": True,
        "violations": [],
        "checked_at": cloud.api.check().checked_at,
    }
    db = app.state.services.db
    with db.write() as s:  # what a double release did on PostgreSQL
        s.execute(update(HostNode).values(rt_used=HostNode.rt_used - 2))
        s.execute(update(Project).where(Project.name == "p1").values(rt_cores_used=-2))
    found = cloud.api.check()
    assert not found.ok
    assert "host 1 node 0: rt_used is 0, its instances hold 2" in found.violations
    assert "project p1: rt_cores_used is -2, instances hold 2" in found.violations
    with db.write() as s:  # the scheduler's SQL tells registered hosts by registered_at
        s.execute(update(Host).values(registered_at=None, hp2m_free_max=7))
    found = cloud.api.check()
    assert "host h1: has NUMA nodes but registered_at is None" in found.violations
    assert any(
        v.startswith("host h1: hp2m_free_max is 7, its nodes have") for v in found.violations
    )


def test_only_admins_may_check(cloud: Cloud) -> None:
    alice, _ = _site(cloud)
    assert alice.get("/v1/check").status_code == 403  # type: ignore[attr-defined]


def test_a_create_left_scheduling_by_a_dead_process_is_failed_on_restart(
    db_url: str, clock: FakeClock
) -> None:
    settings = Settings(database_url=db_url, bootstrap_admin_token=ADMIN_TOKEN)
    first = create_app(settings, clock=clock)
    cloud = Cloud(first)
    try:
        _, vid = _site(cloud)
        db = first.state.services.db
        with db.write() as s:  # as if the process died between the row and its claim
            s.execute(
                update(Instance)
                .where(Instance.id == vid)
                .values(state="scheduling", host_id=None, rt_cores=0, updated_at=clock())
            )
    finally:
        cloud.close()
        first.state.services.db.dispose()
    clock.now += settings.scheduling_stale_s + 1
    second = create_app(settings, clock=clock)
    try:
        with second.state.services.db.read() as s:
            inst = s.get(Instance, vid)
            assert inst is not None
            assert (inst.state, inst.fault) == ("error", STALE_SCHEDULING_FAULT)
    finally:
        second.state.services.db.dispose()
