"""Power actions through the API: the rules of rtkvm.wire.lifecycle, the task the agent
carries out and clears, idempotent repeats, and refusals that say what to do."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from rtkvm.api.testing import Cloud, FakeClock, expect


def _active(cloud: Cloud) -> tuple[TestClient, TestClient, dict[str, Any]]:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("h1", nodes=1, cores_per_node=5)
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "active"}), 200)
    return alice, agent, vm


def _act(client: TestClient, vm: dict[str, Any], action: str, status: int, **extra: Any) -> Any:
    body = {"action": action, **extra}
    return expect(client.post(f"/v1/instances/{vm['id']}/action", json=body), status)


def _report(agent: TestClient, vm: dict[str, Any], state: str, **extra: Any) -> Any:
    body = {"state": state, **extra}
    return expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json=body), 200)


def test_stop_and_start_go_through_the_agent(cloud: Cloud) -> None:
    alice, agent, vm = _active(cloud)
    asked = _act(alice, vm, "stop", 202)
    assert (asked["state"], asked["task"]) == ("active", "stopping")
    [work] = expect(agent.get("/v1/agent/instances"), 200)
    assert work["task"] == "stopping"
    assert _act(alice, vm, "stop", 200)["task"] == "stopping"  # asked twice: same answer
    refused = alice.post(f"/v1/instances/{vm['id']}/action", json={"action": "start"})
    assert refused.status_code == 409 and "is stopping: wait until it is done" in refused.text

    _report(agent, vm, "stopped", done="stopping")
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert (shown["state"], shown["task"], shown["rt_state"]) == ("stopped", None, "unverified")
    # a stopped server keeps its pCPUs, so it can start again
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["nodes"][0]["rt_used"] == 2
    assert expect(cloud.admin.get("/v1/projects/p1"), 200)["rt_cores_used"] == 2
    assert _act(alice, vm, "stop", 200)["task"] is None  # already stopped: a no-op

    assert _act(alice, vm, "start", 202)["task"] == "starting"
    rt = {"state": "verified", "reasons": [], "waived": {}}
    _report(agent, vm, "active", done="starting", rt=rt)
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert (shown["state"], shown["task"], shown["rt_state"]) == ("active", None, "verified")


def test_reboot_keeps_the_state_and_hard_reboot_recovers_an_error(cloud: Cloud) -> None:
    alice, agent, vm = _active(cloud)
    assert _act(alice, vm, "reboot", 202)["task"] == "rebooting"
    _report(agent, vm, "active", done="rebooting")
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["task"] is None

    _report(agent, vm, "error", fault="QEMU died")
    refused = alice.post(f"/v1/instances/{vm['id']}/action", json={"action": "reboot"})
    assert refused.status_code == 409
    assert "reboot --hard builds it again" in refused.text
    assert _act(alice, vm, "reboot", 202, hard=True)["task"] == "rebooting-hard"
    _report(agent, vm, "active", done="rebooting-hard")
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert (shown["state"], shown["fault"], shown["task"]) == ("active", None, None)


def test_a_stale_report_does_not_clear_another_task(cloud: Cloud) -> None:
    alice, agent, vm = _active(cloud)
    _act(alice, vm, "reboot", 202, hard=True)
    _report(agent, vm, "active", done="starting")  # not the task it has
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["task"] == "rebooting-hard"


def test_refusals_say_what_to_do(cloud: Cloud, clock: FakeClock) -> None:
    alice, agent, vm = _active(cloud)
    bad = alice.post(f"/v1/instances/{vm['id']}/action", json={"action": "stop", "hard": True})
    assert bad.status_code == 422 and "only reboot has a hard form" in bad.text
    bad = alice.post(f"/v1/instances/{vm['id']}/action", json={"action": "suspend"})
    assert bad.status_code == 422
    bad = alice.post(f"/v1/instances/{vm['id']}/action", json={"action": "stop", "now": 1})
    assert bad.status_code == 422
    assert alice.post("/v1/instances/nope/action", json={"action": "stop"}).status_code == 404

    cloud.project("p2")
    bob = cloud.member("bob", "p2")
    assert bob.post(f"/v1/instances/{vm['id']}/action", json={"action": "stop"}).status_code == 404

    measuring = expect(
        alice.post("/v1/measurements", json={"kind": "cyclictest", "server": vm["id"]}), 201
    )
    busy = alice.post(f"/v1/instances/{vm['id']}/action", json={"action": "reboot"})
    assert busy.status_code == 409 and measuring["id"] in busy.text
    expect(alice.delete(f"/v1/measurements/{measuring['id']}"), 204)

    clock.advance(61)  # the host's agent went quiet
    down = alice.post(f"/v1/instances/{vm['id']}/action", json={"action": "stop"})
    assert down.status_code == 409 and "host h1 is down" in down.text
    expect(agent.post("/v1/agent/heartbeat", json={}), 200)

    building = expect(alice.post("/v1/instances", json={"name": "b", "flavor": "rt2"}), 201)
    early = alice.post(f"/v1/instances/{building['id']}/action", json={"action": "stop"})
    assert early.status_code == 409 and "wait until it is active" in early.text


def test_a_server_under_a_task_is_not_measured_and_a_delete_drops_the_task(
    cloud: Cloud,
) -> None:
    alice, agent, vm = _active(cloud)
    _act(alice, vm, "stop", 202)
    refused = alice.post("/v1/measurements", json={"kind": "cyclictest", "server": vm["id"]})
    assert refused.status_code == 409 and "is stopping" in refused.text
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    [work] = expect(agent.get("/v1/agent/instances"), 200)
    assert (work["state"], work["task"]) == ("deleting", None)
    _report(agent, vm, "deleted")
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["nodes"][0]["rt_used"] == 0
