"""Authentication and visibility through the real HTTP stack."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from rtkvm.api.testing import Cloud, FakeClock, expect
from rtkvm.db.models import Token


def test_missing_and_bad_tokens_are_refused_with_a_hint(cloud: Cloud) -> None:
    anonymous = cloud.client(None)
    r = anonymous.get("/v1/instances")
    assert r.status_code == 401
    assert "Authorization: Bearer" in r.json()["detail"]
    r = cloud.client("rtk_nonsense").get("/v1/instances")
    assert r.status_code == 401
    assert "unknown or revoked" in r.json()["detail"]


def test_openapi_is_served(cloud: Cloud) -> None:
    doc = expect(cloud.client(None).get("/openapi.json"), 200)
    assert "/v1/instances" in doc["paths"]
    assert "/v1/agent/host" in doc["paths"]


def test_members_cannot_administer(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    for method, path, body in [
        ("post", "/v1/projects", {"name": "x"}),
        ("get", "/v1/hosts", None),
        ("post", "/v1/hosts", {"name": "h"}),
        ("post", "/v1/flavors", {"name": "f", "vcpus": 2, "ram": 512}),
        ("post", "/v1/networks", {"name": "n", "physnet": "blue"}),
        ("get", "/v1/users", None),
        ("put", "/v1/projects/p1/quota", {"rt_cores": 100}),
    ]:
        r = alice.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert "admin" in r.json()["detail"]
    assert [p["name"] for p in expect(alice.get("/v1/projects"), 200)] == ["p1"]


def test_tokens_are_stored_hashed_and_can_be_revoked(cloud: Cloud) -> None:
    cloud.project("p1")
    expect(cloud.admin.post("/v1/users", json={"name": "bob", "project": "p1"}), 201)
    created = expect(cloud.admin.post("/v1/tokens", json={"user": "bob"}), 201)
    secret = created["secret"]
    db = cloud.app.state.services.db
    with db.read() as s:
        hashes = list(s.scalars(select(Token.secret_hash)))
    assert hashlib.sha256(secret.encode()).hexdigest() in hashes
    assert secret not in hashes
    bob = cloud.client(secret)
    expect(bob.get("/v1/flavors"), 200)
    assert all("secret" not in t for t in expect(bob.get("/v1/tokens"), 200))
    expect(bob.delete(f"/v1/tokens/{created['id']}"), 204)
    assert bob.get("/v1/flavors").status_code == 401
    expect(cloud.admin.delete(f"/v1/tokens/{created['id']}"), 204)  # idempotent


def test_revoking_a_token_id_out_of_range_says_so(cloud: Cloud) -> None:
    # found by the fuzz pass: an id past 2**63 made SQLite raise OverflowError (a 500)
    for bad in (2**80, 0):
        r = cloud.admin.delete(f"/v1/tokens/{bad}")
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith("bad request: path.token_id: Input should be")
    expect(cloud.admin.delete(f"/v1/tokens/{2**31 - 1}"), 204)  # in range, unknown: idempotent
    expect(cloud.admin.get("/v1/flavors"), 200)


def test_a_member_cannot_create_tokens_for_others(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    r = alice.post("/v1/tokens", json={"user": "admin"})
    assert r.status_code == 403
    mine = expect(alice.post("/v1/tokens", json={}), 201)
    assert mine["user"] == "alice"


def test_member_sees_only_its_project(cloud: Cloud) -> None:
    cloud.project("p1")
    cloud.project("p2")
    alice = cloud.member("alice", "p1")
    eve = cloud.member("eve", "p2")
    cloud.host("h1", physnets=("blue", "red"))
    cloud.flavor("rt2", 2)
    cloud.network("blue", "blue", shared=True)
    cloud.network("secret", "red", vlan=10, project="p1")
    vm = expect(
        alice.post("/v1/instances", json={"name": "a", "flavor": "rt2", "networks": ["secret"]}),
        201,
    )
    assert eve.get(f"/v1/instances/{vm['id']}").status_code == 404
    assert expect(eve.get("/v1/instances"), 200) == []
    assert [n["name"] for n in expect(eve.get("/v1/networks"), 200)] == ["blue"]
    assert eve.get("/v1/networks/secret").status_code == 404
    r = eve.post("/v1/instances", json={"name": "e", "flavor": "rt2", "networks": ["secret"]})
    assert r.status_code == 404
    assert eve.get("/v1/projects/p1").status_code == 404
    assert eve.get("/v1/usage/p1").status_code == 404
    expect(eve.delete(f"/v1/instances/{vm['id']}"), 204)  # no leak, and no effect:
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["state"] == "building"
    assert [n["name"] for n in expect(alice.get("/v1/networks"), 200)] == ["blue", "secret"]


def test_agent_and_user_credentials_do_not_mix(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("h1")
    r = alice.post("/v1/agent/heartbeat", json={})
    assert r.status_code == 403
    assert "agent token" in r.json()["detail"]
    assert alice.get("/v1/agent/instances").status_code == 403
    assert cloud.admin.put("/v1/agent/host", json={}).status_code in (403, 422)
    r = agent.get("/v1/instances")
    assert r.status_code == 403
    assert "user token" in r.json()["detail"]
    assert agent.get("/v1/hosts").status_code == 403


def test_an_agent_reports_only_for_its_own_host(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent1 = cloud.host("h1", nodes=1, cores_per_node=4)
    agent2 = cloud.host("h2", nodes=1, cores_per_node=4)
    cloud.flavor("rt3", 3)
    vm = expect(alice.post("/v1/instances", json={"name": "a", "flavor": "rt3"}), 201)
    mine, other = (agent1, agent2) if vm["host"] == "h1" else (agent2, agent1)
    assert [i["id"] for i in expect(mine.get("/v1/agent/instances"), 200)] == [vm["id"]]
    assert expect(other.get("/v1/agent/instances"), 200) == []
    r = other.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "active"})
    assert r.status_code == 404
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["state"] == "building"


def test_a_token_with_a_lifetime_is_refused_once_it_expired(cloud: Cloud, clock: FakeClock) -> None:
    cloud.project("p1")
    cloud.member("bob", "p1")
    made = expect(cloud.admin.post("/v1/tokens", json={"user": "bob", "lifetime_s": 3600}), 201)
    assert made["expires_at"] == clock.now + 3600
    bob = cloud.client(made["secret"])
    assert bob.get("/v1/instances").status_code == 200
    clock.now += 3601
    refused = bob.get("/v1/instances")
    assert refused.status_code == 401
    assert "expired at" in refused.json()["detail"]
    assert "`rtkvm cloud token issue`" in refused.json()["detail"]
    short = cloud.admin.post("/v1/tokens", json={"user": "bob", "lifetime_s": 5})
    assert short.status_code == 422  # under a minute is a typo


def test_a_source_that_keeps_failing_to_authenticate_is_slowed_down(
    cloud: Cloud, clock: FakeClock
) -> None:
    guesser = cloud.client("rtk_guess-0123456789abcdefghijklmnopqrstuvwxyzABCD")
    statuses = [guesser.get("/v1/instances").status_code for _ in range(21)]
    assert statuses == [401] * 20 + [429]
    refused = guesser.get("/v1/instances")
    assert "too many failed authentications" in refused.json()["detail"]
    assert cloud.admin.get("/v1/instances").status_code == 429  # the same address
    clock.now += 61
    assert cloud.admin.get("/v1/instances").status_code == 200


def test_the_bootstrap_token_works_for_a_day_then_only_the_tokens_it_issued(
    cloud: Cloud, clock: FakeClock
) -> None:
    own = expect(cloud.admin.post("/v1/tokens", json={}), 201)["secret"]
    [bootstrap] = [t for t in expect(cloud.admin.get("/v1/tokens"), 200) if t["id"] == 1]
    assert bootstrap["expires_at"] == clock.now + 86400
    clock.now += 86401
    assert cloud.admin.get("/v1/hosts").status_code == 401
    assert cloud.client(own).get("/v1/hosts").status_code == 200
