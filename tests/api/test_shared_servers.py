"""Ordinary (hw:cpu_policy=shared) servers beside RT ones: placed on the hosts' shared CPUs
without an RT pCPU, counted apart in quotas and usage, refused and freed like the others."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from rtkvm.api.testing import Cloud, FakeClock, expect
from rtkvm.db.engine import Database
from rtkvm.scheduler.invariants import violations

SHARED = {"name": "plain2", "vcpus": 2, "ram": 512, "extra_specs": {"hw:cpu_policy": "shared"}}


def _site(cloud: Cloud) -> tuple[TestClient, TestClient]:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("h1", nodes=1, cores_per_node=5)  # 4 RT pCPUs
    cloud.flavor("rt4", 4)
    expect(cloud.admin.post("/v1/flavors", json=SHARED), 201)
    return alice, agent


def _create(client: TestClient, name: str, flavor: str, status: int = 201) -> Any:
    return expect(client.post("/v1/instances", json={"name": name, "flavor": flavor}), status)


def _invariants(cloud: Cloud) -> list[str]:
    db: Database = cloud.app.state.services.db
    with db.read() as s:
        return violations(s)


def test_a_shared_server_fits_beside_a_full_rt_host_and_claims_no_rt_pcpu(
    cloud: Cloud, clock: FakeClock
) -> None:
    alice, agent = _site(cloud)
    rt = _create(alice, "rt", "rt4")
    plain = _create(alice, "plain", "plain2")
    assert (plain["host"], plain["rt_cores"], plain["vcpu_pins"]) == ("h1", 0, [])
    assert plain["rt_waiver"] is None
    [work] = [w for w in expect(agent.get("/v1/agent/instances"), 200) if w["id"] == plain["id"]]
    doc = work["placement"]
    assert doc["floating_vcpus"] == "0-1" and doc["floating_cpus"] == "0"  # housekeeping
    rt_pcpus = {p for _, p in rt["vcpu_pins"]}
    assert not rt_pcpus & {0}
    project = expect(cloud.admin.get("/v1/projects/p1"), 200)
    assert (project["rt_cores_used"], project["shared_vcpus_used"]) == (4, 2)
    assert project["instances_used"] == 2
    host = expect(cloud.admin.get("/v1/hosts/h1"), 200)
    assert host["nodes"][0]["rt_used"] == 4
    assert _invariants(cloud) == []

    clock.advance(100)
    usage = expect(cloud.admin.get("/v1/usage/p1"), 200)
    assert usage["shared_vcpus_in_use"] == 2 and usage["shared_vcpu_seconds"] == 200.0

    expect(alice.delete(f"/v1/instances/{plain['id']}"), 204)  # the agent tears it down
    assert expect(alice.get(f"/v1/instances/{plain['id']}"), 200)["state"] == "deleting"
    expect(agent.post(f"/v1/agent/instances/{plain['id']}/state", json={"state": "deleted"}), 200)
    project = expect(cloud.admin.get("/v1/projects/p1"), 200)
    assert (project["shared_vcpus_used"], project["instances_used"]) == (0, 1)
    assert _invariants(cloud) == []


def test_shared_vcpus_have_their_own_quota(cloud: Cloud) -> None:
    alice, _ = _site(cloud)
    expect(cloud.admin.put("/v1/projects/p1/quota", json={"shared_vcpus": 3}), 200)
    _create(alice, "a", "plain2")
    refused = alice.post("/v1/instances", json={"name": "b", "flavor": "plain2"})
    assert refused.status_code == 403
    assert "2 of 3 shared vCPUs" in refused.text and "needs 0 RT cores and 2 shared" in refused.text
    _create(alice, "rt", "rt4")  # RT cores are counted apart
    assert _invariants(cloud) == []


def test_a_host_that_is_not_rt_ready_takes_shared_servers_only(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.host("lab", nodes=1, cores_per_node=5, verdict="not-ready")
    cloud.flavor("rt2", 2)
    expect(cloud.admin.post("/v1/flavors", json=SHARED), 201)
    refused = alice.post("/v1/instances", json={"name": "rt", "flavor": "rt2"})
    assert refused.status_code == 409 and "not RT-ready" in refused.text
    plain = _create(alice, "plain", "plain2")
    assert (plain["host"], plain["rt_waiver"]) == ("lab", None)


def test_a_shared_server_too_big_for_any_node_says_so(cloud: Cloud) -> None:
    alice, _ = _site(cloud)
    big = {
        "name": "huge",
        "vcpus": 2,
        "ram": 10_000_000,
        "extra_specs": {"hw:cpu_policy": "shared"},
    }
    expect(cloud.admin.post("/v1/flavors", json=big), 201)
    refused = alice.post("/v1/instances", json={"name": "x", "flavor": "huge"})
    assert refused.status_code == 409
    assert "no RT pCPU" in refused.text and "MiB of RAM free" in refused.text


def test_a_host_waiver_does_not_speak_for_a_shared_server(cloud: Cloud) -> None:
    """On a waived lab host an RT server is not assured; a shared one asks nothing of RT."""
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("lab", nodes=1, cores_per_node=5, verdict="not-ready")
    expect(cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": "lab bench"}), 200)
    cloud.flavor("rt2", 2)
    expect(cloud.admin.post("/v1/flavors", json=SHARED), 201)
    rt, plain = _create(alice, "rt", "rt2"), _create(alice, "plain", "plain2")
    check = {"state": "verified", "reasons": [], "waived": {}}
    for vm in (rt, plain):
        body = {"state": "active", "rt": check}
        expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json=body), 200)
    shown = {v["name"]: v for v in expect(alice.get("/v1/instances"), 200)}
    assert shown["rt"]["rt_state"] == "not-assured"
    assert shown["plain"]["rt_state"] == "verified"
