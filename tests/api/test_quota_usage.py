"""Quotas (checked in the claim transaction) and usage accounting."""

from __future__ import annotations

import pytest

from rtkvm.api.testing import Cloud, FakeClock, expect


def test_rt_core_and_instance_quotas(cloud: Cloud) -> None:
    cloud.project("p1", quota_rt_cores=5, quota_instances=3)
    alice = cloud.member("alice", "p1")
    cloud.host("h1")
    cloud.flavor("rt2", 2)
    for i in range(2):
        expect(alice.post("/v1/instances", json={"name": f"vm{i}", "flavor": "rt2"}), 201)
    r = alice.post("/v1/instances", json={"name": "vm2", "flavor": "rt2"})
    assert r.status_code == 403
    detail = r.json()["detail"]
    assert "holds 4 of 5 RT cores" in detail
    assert "needs 2 RT cores" in detail
    project = expect(cloud.admin.get("/v1/projects/p1"), 200)
    assert (project["rt_cores_used"], project["instances_used"]) == (4, 2)
    # the refused guest claimed nothing on the host
    assert sum(n["rt_used"] for n in expect(cloud.admin.get("/v1/hosts/h1"), 200)["nodes"]) == 4
    expect(cloud.admin.put("/v1/projects/p1/quota", json={"rt_cores": None}), 200)
    expect(alice.post("/v1/instances", json={"name": "vm3", "flavor": "rt2"}), 201)
    r = alice.post("/v1/instances", json={"name": "vm4", "flavor": "rt2"})
    assert r.status_code == 403
    assert "3 of 3 instances" in r.json()["detail"]


def test_usage_counts_core_seconds_until_the_host_frees_the_guest(
    cloud: Cloud, clock: FakeClock
) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("h1")
    cloud.flavor("rt4", 4, **{"hw__emulator_threads_policy": "isolate"})
    start = clock.now
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt4"}), 201)
    clock.advance(100)
    usage = expect(alice.get("/v1/usage/p1"), 200)
    assert usage["rt_core_seconds"] == pytest.approx(500)
    assert usage["instance_seconds"] == pytest.approx(100)
    assert usage["rt_cores_in_use"] == 5
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    clock.advance(20)  # teardown takes 20 s: still billed
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "deleted"}), 200)
    clock.advance(1000)
    usage = expect(alice.get("/v1/usage/p1"), 200)
    assert usage["rt_core_seconds"] == pytest.approx(600)
    assert usage["rt_cores_in_use"] == 0
    window = expect(alice.get(f"/v1/usage/p1?since={start + 50}&until={start + 60}"), 200)
    assert window["instance_seconds"] == pytest.approx(10)


def test_quota_setting_and_project_delete(cloud: Cloud) -> None:
    cloud.project("p1")
    assert cloud.admin.put("/v1/projects/p1/quota", json={"rt_cores": -1}).status_code == 422
    p = expect(cloud.admin.put("/v1/projects/p1/quota", json={"instances": 7}), 200)
    assert (p["quota_instances"], p["quota_rt_cores"]) == (7, None)
    assert cloud.admin.put("/v1/projects/nope/quota", json={}).status_code == 404
    cloud.member("alice", "p1")
    assert cloud.admin.delete("/v1/projects/p1").status_code == 409
    expect(cloud.admin.delete("/v1/users/alice"), 204)
    expect(cloud.admin.delete("/v1/projects/p1"), 204)
    expect(cloud.admin.delete("/v1/projects/p1"), 204)


def test_quotas_past_what_the_database_holds_are_refused_with_the_limit(cloud: Cloud) -> None:
    # found by the fuzz pass: SQLite raised OverflowError (a 500), PostgreSQL blamed NUL bytes
    huge = 2**70
    r = cloud.admin.post("/v1/projects", json={"name": "p1", "quota_instances": huge})
    assert r.status_code == 422
    assert "quota_instances: Input should be less than or equal to 2147483647" in r.json()["detail"]
    cloud.project("p1", quota_rt_cores=2**31 - 1)
    r = cloud.admin.put("/v1/projects/p1/quota", json={"rt_cores": 2**31})
    assert r.status_code == 422
    assert "rt_cores: Input should be less than or equal to 2147483647" in r.json()["detail"]
    assert expect(cloud.admin.get("/v1/projects/p1"), 200)["quota_rt_cores"] == 2**31 - 1


def test_usage_windows_must_be_finite(cloud: Cloud) -> None:
    # found after the fuzz pass: until=nan or inf answered 200 with "until": null
    cloud.project("p1")
    for query in ("until=nan", "until=inf", "since=nan", "since=inf"):
        r = cloud.admin.get(f"/v1/usage/p1?{query}")
        assert r.status_code == 422, query
        assert "Input should be a finite number" in r.json()["detail"], query
    assert expect(cloud.admin.get("/v1/usage/p1?until=5"), 200)["until"] == 5.0


def test_projects_and_users_with_history_are_kept(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("h1", nodes=1, cores_per_node=4)
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "deleted"}), 200)
    r = cloud.admin.delete("/v1/users/alice")
    assert r.status_code == 409
    assert "revoke the user's tokens" in r.json()["detail"]
    r = cloud.admin.delete("/v1/projects/p1")
    assert r.status_code == 409
    assert expect(cloud.admin.get("/v1/usage/p1"), 200)["instance_seconds"] == 0
