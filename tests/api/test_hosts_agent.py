"""Hosts: enrollment, registration, heartbeats and liveness, the agent's work loop."""

from __future__ import annotations

from typing import Any

from rtkvm.api.testing import Cloud, FakeClock, expect
from rtkvm.scheduler.fakehosts import fake_host


def _report(**changes: Any) -> dict[str, Any]:
    fake = fake_host(nodes=1, cores_per_node=4)
    body: dict[str, Any] = {
        "topology": fake.topology.model_dump(),
        "plan": fake.plan.model_dump(mode="json"),
        "doctor": {"verdict": "ready"},
        "dataplane_state": "ready",
        "physnets": ["blue"],
    }
    body.update(changes)
    return body


def test_enroll_register_heartbeat_and_liveness(cloud: Cloud, clock: FakeClock) -> None:
    enrolled = expect(cloud.admin.post("/v1/hosts", json={"name": "h1"}), 201)
    assert enrolled["host"]["status"] == "enrolled"
    assert enrolled["agent_token"].startswith("rtk_")
    assert cloud.admin.post("/v1/hosts", json={"name": "h1"}).status_code == 409
    agent = cloud.client(enrolled["agent_token"])
    assert agent.post("/v1/agent/heartbeat", json={}).status_code == 409  # register first
    host = expect(agent.put("/v1/agent/host", json=_report()), 200)
    assert host["status"] == "up"
    assert host["nodes"][0]["rt_pcpus"] == "1-3"
    assert host["physnets"] == ["blue"]
    clock.advance(61)
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["status"] == "down"
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    r = alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"})
    assert r.status_code == 409
    assert "1 host down (no agent heartbeat for 60 s)" in r.json()["detail"]
    assert expect(agent.post("/v1/agent/heartbeat", json={}), 200)["status"] == "up"
    expect(alice.post("/v1/instances", json={"name": "vm2", "flavor": "rt2"}), 201)


def test_heartbeat_can_update_the_doctor_verdict(cloud: Cloud) -> None:
    agent = cloud.host("h1", nodes=1, cores_per_node=4)
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    sick = {"doctor": {"verdict": "not-ready", "failed": ["rt_throttling"]}}
    host = expect(agent.post("/v1/agent/heartbeat", json=sick), 200)
    assert host["doctor_failed"] == ["rt_throttling"]
    r = alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"})
    assert "1 host not RT-ready" in r.json()["detail"]


def test_bad_reports_say_what_is_wrong(cloud: Cloud) -> None:
    token = expect(cloud.admin.post("/v1/hosts", json={"name": "h1"}), 201)["agent_token"]
    agent = cloud.client(token)
    plan = fake_host(nodes=2, cores_per_node=4).plan.model_dump(mode="json")
    r = agent.put("/v1/agent/host", json=_report(plan=plan))  # plan of a bigger machine
    assert r.status_code == 400
    assert "does not have" in r.json()["detail"]
    r = agent.put("/v1/agent/host", json=_report(plan={"housekeeping": "0"}))
    assert r.status_code == 422
    assert "plan" in r.json()["detail"]
    r = agent.put("/v1/agent/host", json=_report(physnets=["Blue Net"]))
    assert r.status_code == 400
    assert "lower-case" in r.json()["detail"]
    r = agent.put("/v1/agent/host", json=_report(doctor={"verdict": "maybe"}))
    assert r.status_code == 422
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["status"] == "enrolled"


def test_hugepage_counts_past_what_the_database_holds_are_refused(cloud: Cloud) -> None:
    # found after the fuzz pass: SQLite raised OverflowError (a 500), PostgreSQL blamed NUL bytes
    token = expect(cloud.admin.post("/v1/hosts", json={"name": "h1"}), 201)["agent_token"]
    agent = cloud.client(token)
    report = _report()
    report["topology"]["nodes"][0]["hugepages"] = [{"size_kb": 2048, "total": 2**70, "free": 0}]
    r = agent.put("/v1/agent/host", json=report)
    assert r.status_code == 422
    assert r.json()["detail"] == (
        f"topology: node 0's 2 MiB hugepage total {2**70} is beyond 2147483647: "
        "report the host's real topology"
    )
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["status"] == "enrolled"
    report["topology"]["nodes"][0]["hugepages"][0]["total"] = 2**31 - 1
    host = expect(agent.put("/v1/agent/host", json=report), 200)
    assert host["nodes"][0]["hugepages_2m_total"] == 2**31 - 1


def test_replanning_under_running_guests_is_refused(cloud: Cloud) -> None:
    agent = cloud.host("h1", nodes=1, cores_per_node=4)
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    smaller = _report()
    smaller["plan"] = {"housekeeping": "0-2", "rt_vcpu": "3", "dataplane": ""}
    r = agent.put("/v1/agent/host", json=smaller)
    assert r.status_code == 400
    assert "delete those guests" in r.json()["detail"]
    host = expect(cloud.admin.get("/v1/hosts/h1"), 200)
    assert host["nodes"][0]["rt_pcpus"] == "1-3"
    assert host["nodes"][0]["rt_used"] == 2
    same = expect(agent.put("/v1/agent/host", json=_report()), 200)  # same plan: fine
    assert same["nodes"][0]["rt_used"] == 2


def test_agent_work_loop_and_state_machine(cloud: Cloud) -> None:
    agent = cloud.host("h1", nodes=1, cores_per_node=4)
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    [work] = expect(agent.get("/v1/agent/instances"), 200)
    assert work["state"] == "building"
    assert work["spec"]["vcpus"] == 2
    assert work["placement"]["hugepages"] == {"0": 512}  # 1024 MiB in 2M pages
    assert work["placement"]["page_kib"] == 2048
    url = f"/v1/agent/instances/{vm['id']}/state"
    assert agent.post(url, json={"state": "deleted"}).status_code == 409
    assert expect(agent.post(url, json={"state": "active"}), 200)["state"] == "active"
    assert expect(agent.post(url, json={"state": "active"}), 200)["state"] == "active"
    failed = expect(agent.post(url, json={"state": "error", "fault": "qemu died"}), 200)
    assert (failed["state"], failed["fault"]) == ("error", "qemu died")
    assert expect(cloud.admin.get("/v1/projects/p1"), 200)["rt_cores_used"] == 2  # still held
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    stuck = expect(agent.post(url, json={"state": "error", "fault": "virsh undefine"}), 200)
    assert (stuck["state"], stuck["fault"]) == ("deleting", "virsh undefine")
    assert expect(agent.post(url, json={"state": "deleted"}), 200)["state"] == "deleted"
    assert expect(agent.get("/v1/agent/instances"), 200) == []


def test_remove_host_is_refused_with_guests_and_idempotent(cloud: Cloud) -> None:
    agent = cloud.host("h1", nodes=1, cores_per_node=4)
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    assert cloud.admin.delete("/v1/hosts/h1").status_code == 409
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "deleted"}), 200)
    expect(cloud.admin.delete("/v1/hosts/h1"), 204)
    expect(cloud.admin.delete("/v1/hosts/h1"), 204)
    assert agent.post("/v1/agent/heartbeat", json={}).status_code == 401
    assert cloud.admin.get("/v1/hosts/h1").status_code == 404
