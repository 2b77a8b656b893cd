"""Unknown domains and ports an agent reports are stored per host as its current list:
first seen kept, last seen and verdict updated, gone ones removed, an empty report clears
them; admins list them (GET /v1/hosts/{name}/unknown), nobody else."""

from __future__ import annotations

import uuid

from rtkvm.api.testing import Cloud, FakeClock, expect


def test_reports_replace_the_hosts_list_and_keep_first_seen(cloud: Cloud, clock: FakeClock) -> None:
    agent = cloud.host("h1", nodes=1, cores_per_node=4)
    other = cloud.host("h2", nodes=1, cores_per_node=4)
    stray, old = str(uuid.uuid4()), str(uuid.uuid4())
    port_guest = uuid.uuid4().hex
    first = {
        "domains": [
            {"name": "rtkvm-" + stray, "uuid": stray, "running": True},
            {"name": "by-hand", "uuid": old, "running": False},
        ],
        "ports": [{"guest": port_guest, "nic": 0}],
    }
    verdicts = expect(agent.post("/v1/agent/unknown", json=first), 200)
    assert {v["verdict"] for v in verdicts} == {"unknown"}
    expect(other.post("/v1/agent/unknown", json={"domains": [first["domains"][0]]}), 200)
    rows = expect(cloud.admin.get("/v1/hosts/h1/unknown"), 200)
    assert [(r["kind"], r["name"]) for r in rows] == [
        ("domain", "by-hand"),
        ("domain", "rtkvm-" + stray),
        ("port", f"vhu-{port_guest}-0"),
    ]
    assert {r["first_seen"] for r in rows} == {clock.now}
    assert rows[1]["running"] is True and rows[2]["running"] is None
    assert rows[2]["uuid"] == str(uuid.UUID(hex=port_guest))

    clock.advance(30)
    second = {"domains": [{"name": "rtkvm-" + stray, "uuid": stray, "running": False}]}
    expect(agent.post("/v1/agent/unknown", json=second), 200)
    [row] = expect(cloud.admin.get("/v1/hosts/h1/unknown"), 200)
    assert row["name"] == "rtkvm-" + stray
    assert (row["first_seen"], row["last_seen"]) == (clock.now - 30, clock.now)
    assert row["running"] is False
    assert len(expect(cloud.admin.get("/v1/hosts/h2/unknown"), 200)) == 1  # not h1's report

    expect(agent.post("/v1/agent/unknown", json={}), 200)
    assert expect(cloud.admin.get("/v1/hosts/h1/unknown"), 200) == []


def test_the_verdict_follows_the_instance(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("h1", nodes=1, cores_per_node=4)
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "deleted"}), 200)
    body = {"domains": [{"name": "rtkvm-" + vm["id"], "uuid": vm["id"], "running": True}]}
    expect(agent.post("/v1/agent/unknown", json=body), 200)
    [row] = expect(cloud.admin.get("/v1/hosts/h1/unknown"), 200)
    assert row["verdict"] == "deleted"
    assert "rtkvm guest delete" in row["hint"]


def test_a_name_reported_twice_is_stored_once(cloud: Cloud) -> None:
    agent = cloud.host("h1", nodes=1, cores_per_node=4)
    dom = {"name": "x", "uuid": str(uuid.uuid4()), "running": True}
    expect(agent.post("/v1/agent/unknown", json={"domains": [dom, dom]}), 200)
    assert len(expect(cloud.admin.get("/v1/hosts/h1/unknown"), 200)) == 1


def test_only_admins_list_them_and_a_host_with_some_can_be_removed(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("h1", nodes=1, cores_per_node=4)
    dom = {"name": "x", "uuid": str(uuid.uuid4()), "running": True}
    expect(agent.post("/v1/agent/unknown", json={"domains": [dom]}), 200)
    assert alice.get("/v1/hosts/h1/unknown").status_code == 403
    assert agent.get("/v1/hosts/h1/unknown").status_code == 403
    assert cloud.admin.get("/v1/hosts/nope/unknown").status_code == 404
    expect(cloud.admin.delete("/v1/hosts/h1"), 204)
    assert cloud.admin.get("/v1/hosts/h1/unknown").status_code == 404
