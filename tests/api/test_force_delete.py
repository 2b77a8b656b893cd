"""Admins force-delete instances whose host will never tear them down (down or in error):
claims, hugepages, quota and usage are freed as the agent's 'deleted' report frees them,
and the freed pCPUs can be claimed again. Refused for members, and while the host is up."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rtkvm.api.testing import Cloud, FakeClock, expect


def _setup(cloud: Cloud) -> tuple[TestClient, TestClient, dict[str, Any]]:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("h1", nodes=1, cores_per_node=5)  # 4 RT pCPUs: one rt4 guest
    cloud.flavor("rt4", 4)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt4"}), 201)
    return alice, agent, vm


def test_force_delete_on_a_dead_host_frees_everything(
    cloud: Cloud, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    alice, agent, vm = _setup(cloud)
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)  # deleting: waits for the agent
    clock.advance(61)  # the host died
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["nodes"][0]["rt_used"] == 4
    with caplog.at_level(logging.WARNING, logger="rtkvm.api.instances"):
        expect(cloud.admin.delete(f"/v1/instances/{vm['id']}", params={"force": "true"}), 204)
    [record] = [r for r in caplog.records if r.name == "rtkvm.api.instances"]
    assert f"rtkvm guest delete rtkvm-{vm['id']}" in record.getMessage()
    assert "may still exist" in record.getMessage()
    host = expect(cloud.admin.get("/v1/hosts/h1"), 200)
    assert host["nodes"][0]["rt_used"] == 0
    assert host["nodes"][0]["hugepages_2m_used"] == 0
    project = expect(cloud.admin.get("/v1/projects/p1"), 200)
    assert (project["rt_cores_used"], project["instances_used"]) == (0, 0)
    assert alice.get(f"/v1/instances/{vm['id']}").status_code == 404
    usage = expect(cloud.admin.get("/v1/usage/p1"), 200)
    assert usage["rt_cores_in_use"] == 0
    # idempotent, and the agent's late report finds it already deleted
    expect(cloud.admin.delete(f"/v1/instances/{vm['id']}", params={"force": "true"}), 204)
    expect(agent.post("/v1/agent/heartbeat", json={}), 200)  # the host is back
    assert expect(agent.get("/v1/agent/instances"), 200) == []
    again = expect(alice.post("/v1/instances", json={"name": "vm2", "flavor": "rt4"}), 201)
    assert {p for _, p in again["vcpu_pins"]} == {p for _, p in vm["vcpu_pins"]}


def test_force_delete_of_an_instance_in_error_on_a_live_host(cloud: Cloud) -> None:
    _, agent, vm = _setup(cloud)
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "error"}), 200)
    expect(cloud.admin.delete(f"/v1/instances/{vm['id']}", params={"force": "true"}), 204)
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["nodes"][0]["rt_used"] == 0


def test_force_delete_is_refused_while_the_host_is_up(cloud: Cloud) -> None:
    alice, _, vm = _setup(cloud)
    r = cloud.admin.delete(f"/v1/instances/{vm['id']}", params={"force": "true"})
    assert r.status_code == 409
    assert "use a plain delete" in r.json()["detail"]
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["state"] == "building"


def test_force_delete_needs_an_admin(cloud: Cloud, clock: FakeClock) -> None:
    alice, _, vm = _setup(cloud)
    clock.advance(61)
    r = alice.delete(f"/v1/instances/{vm['id']}", params={"force": "true"})
    assert r.status_code == 403
    assert "admin" in r.json()["detail"]
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["nodes"][0]["rt_used"] == 4


def test_force_delete_of_an_unplaced_instance_just_deletes_it(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt4", 4)
    assert alice.post("/v1/instances", json={"name": "vm", "flavor": "rt4"}).status_code == 409
    [vm] = expect(alice.get("/v1/instances"), 200)
    assert vm["state"] == "error" and vm["host"] is None
    expect(cloud.admin.delete(f"/v1/instances/{vm['id']}", params={"force": "true"}), 204)
    assert alice.get(f"/v1/instances/{vm['id']}").status_code == 404
