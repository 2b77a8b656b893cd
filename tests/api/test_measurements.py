"""Measurements: queued by users (member-scoped), fetched and reported by the host's agent."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rtkvm.api.testing import Cloud, FakeClock, expect
from rtkvm.db.models import Instance, Measurement

CYCLICTEST_RESULT = {
    "guest": "vm1",
    "accel": "kvm",
    "boot_seconds": 3.2,
    "run_seconds": 3.0,
    "guest_realtime": True,
    "cyclictest": "-l 3000",
    "latency": {
        "buckets": 2000,
        "overflowed": False,
        "threads": [
            {"thread": 0, "min_us": 2, "avg_us": 3, "max_us": 11, "samples": 3000},
            {"thread": 1, "min_us": 2, "avg_us": 4, "max_us": 17, "samples": 3000},
        ],
        "histogram": [],
    },
    "verify": {},
}


def _setup(cloud: Cloud) -> tuple[TestClient, TestClient]:
    """Project p1 with member alice, shared networks blue and red, host h1 wired to both."""
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.network("blue", "blue", shared=True)
    cloud.network("red", "red", shared=True)
    cloud.flavor("rt2", 2)
    agent = cloud.host("h1", physnets=("blue", "red"))
    return alice, agent


def _active(
    user: TestClient, agent: TestClient, name: str, networks: tuple[str, ...] = ("blue",)
) -> dict[str, Any]:
    """An instance built and reported active by its host's agent."""
    body = {"name": name, "flavor": "rt2", "networks": list(networks)}
    vm = expect(user.post("/v1/instances", json=body), 201)
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "active"}), 200)
    return vm  # type: ignore[no-any-return]


def _state(agent: TestClient, mid: str, state: str, **fields: Any) -> Any:
    return agent.post(f"/v1/agent/measurements/{mid}/state", json={"state": state, **fields})


def _detail(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["detail"])


def test_cyclictest_flow_from_queue_to_result(cloud: Cloud, app: FastAPI) -> None:
    alice, agent = _setup(cloud)
    vm = _active(alice, agent, "vm1")
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201)
    assert (m["state"], m["server"], m["server_name"], m["host"]) == (
        "queued",
        vm["id"],
        "vm1",
        "h1",
    )
    assert m["params"] == {"loops": 3000, "interval_us": 1000, "buckets": 2000, "priority": 90}
    assert (m["peer"], m["network"], m["result"], m["rt_waiver"]) == (None, None, None, None)
    assert m["project"] == "p1"

    [work] = expect(agent.get("/v1/agent/measurements"), 200)
    assert (work["id"], work["kind"], work["state"]) == (m["id"], "cyclictest", "queued")
    assert work["server"]["id"] == vm["id"]
    assert work["server"]["spec"]["vcpus"] == 2
    assert work["peer"] is None

    assert expect(_state(agent, m["id"], "running"), 200)["state"] == "running"
    assert expect(_state(agent, m["id"], "running"), 200)["state"] == "running"  # idempotent
    assert expect(agent.get("/v1/agent/measurements"), 200)[0]["state"] == "running"
    expect(_state(agent, m["id"], "done", result=CYCLICTEST_RESULT), 200)
    assert expect(agent.get("/v1/agent/measurements"), 200) == []

    shown = expect(alice.get(f"/v1/measurements/{m['id']}"), 200)
    assert shown["state"] == "done"
    assert shown["result"] == CYCLICTEST_RESULT
    assert shown["started_at"] is not None and shown["finished_at"] is not None
    assert [x["id"] for x in expect(alice.get("/v1/measurements"), 200)] == [m["id"]]


def test_rtt_over_the_first_shared_network(cloud: Cloud, clock: FakeClock) -> None:
    alice, agent = _setup(cloud)
    client = _active(alice, agent, "c")
    server = _active(alice, agent, "s", ("blue", "red"))
    body = {"kind": "rtt", "server": client["id"], "peer": "s", "rtt": {"seconds": 2}}
    m = expect(alice.post("/v1/measurements", json=body), 201)
    assert (m["server"], m["peer"], m["peer_name"], m["network"]) == (
        client["id"],
        server["id"],
        "s",
        "blue",
    )
    assert m["params"] == {
        "seconds": 2,
        "mps": 2000,
        "bucket_us": 10.0,
        "client_address": "169.254.77.1/24",
        "server_address": "169.254.77.2/24",
    }
    [work] = expect(agent.get("/v1/agent/measurements"), 200)
    assert (work["server"]["id"], work["peer"]["id"], work["network"]) == (
        client["id"],
        server["id"],
        "blue",
    )
    expect(_state(agent, m["id"], "error", fault="sockperf did not answer"), 200)
    clock.advance(5)
    second = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "s"}), 201)
    listed = expect(alice.get("/v1/measurements"), 200)
    assert [x["id"] for x in listed] == [second["id"], m["id"]]  # newest first
    assert (listed[1]["state"], listed[1]["fault"]) == ("error", "sockperf did not answer")


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"kind": "cyclictest", "server": "a", "peer": "b"}, 422, "peer: only rtt"),
        ({"kind": "cyclictest", "server": "a", "network": "blue"}, 422, "network: only rtt"),
        ({"kind": "cyclictest", "server": "a", "rtt": {}}, 422, "rtt: only rtt"),
        ({"kind": "rtt", "server": "a"}, 422, "peer: rtt needs"),
        ({"kind": "rtt", "server": "a", "peer": "b", "cyclictest": {}}, 422, "only cyclictest"),
        (
            {"kind": "rtt", "server": "a", "peer": "b", "rtt": {"client_address": "10.0.0.1"}},
            422,
            "give ADDR/PREFIX",
        ),
        (
            {"kind": "rtt", "server": "a", "peer": "b", "rtt": {"client_address": "x/24"}},
            422,
            "not an IPv4",
        ),
        (
            {
                "kind": "rtt",
                "server": "a",
                "peer": "b",
                "rtt": {"client_address": "10.0.0.1/24", "server_address": "10.0.1.1/24"},
            },
            422,
            "different subnets",
        ),
        (
            {
                "kind": "rtt",
                "server": "a",
                "peer": "b",
                "rtt": {"client_address": "10.0.0.1/24", "server_address": "10.0.0.1/24"},
            },
            422,
            "give two addresses",
        ),
        (
            {"kind": "rtt", "server": "a", "peer": "b", "rtt": {"client_address": "10.0.0.0/24"}},
            422,
            "network or broadcast",
        ),
        ({"kind": "rtt", "server": "a", "peer": "a"}, 422, "needs two instances"),
        ({"kind": "rtt", "server": "a", "peer": "b", "network": "red"}, 422, "NIC 1 (eth1)"),
        ({"kind": "rtt", "server": "a", "peer": "b", "network": "green"}, 422, "not attached"),
        ({"kind": "rtt", "server": "a", "peer": "b", "network": "nope"}, 404, "'nope' not found"),
        ({"kind": "cyclictest", "server": "ghost"}, 404, "'ghost' not found"),
        ({"kind": "cyclictest", "server": "dup"}, 409, "give the id"),
        ({"kind": "cyclictest", "server": "new"}, 409, "is building"),
        ({"kind": "rtt", "server": "a", "peer": "new"}, 409, "is building"),
        ({"kind": "cyclictest", "server": "a", "cyclictest": {"loops": 1}}, 422, "loops"),
        ({"kind": "ping", "server": "a"}, 422, "kind"),
    ],
)
def test_refusals_say_what_to_change(cloud: Cloud, body: Any, status: int, words: str) -> None:
    alice, agent = _setup(cloud)
    cloud.network("green", "green", shared=True)
    _active(alice, agent, "a", ("blue", "red"))
    _active(alice, agent, "b", ("blue", "red"))
    _active(alice, agent, "dup")
    _active(alice, agent, "dup")
    expect(alice.post("/v1/instances", json={"name": "new", "flavor": "rt2"}), 201)
    detail = _detail(alice.post("/v1/measurements", json=body), status)
    assert words in detail, detail
    assert expect(alice.get("/v1/measurements"), 200) == []


def test_network_must_be_the_clients_first_nic_too(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    _active(alice, agent, "a", ("red", "blue"))
    _active(alice, agent, "b", ("blue",))
    body = {"kind": "rtt", "server": "a", "peer": "b"}  # default: a's first network, red
    assert "not attached to network red" in _detail(alice.post("/v1/measurements", json=body), 422)
    body["network"] = "blue"
    assert "NIC 1 (eth1) of instance a" in _detail(alice.post("/v1/measurements", json=body), 422)
    _active(alice, agent, "solo", ())
    body = {"kind": "rtt", "server": "solo", "peer": "b"}
    assert "has no network" in _detail(alice.post("/v1/measurements", json=body), 422)


def test_an_instance_takes_part_in_one_measurement_at_a_time(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    _active(alice, agent, "a")
    _active(alice, agent, "b")
    first = expect(
        alice.post("/v1/measurements", json={"kind": "rtt", "server": "a", "peer": "b"}), 201
    )
    for ref in ("a", "b"):
        detail = _detail(
            alice.post("/v1/measurements", json={"kind": "cyclictest", "server": ref}), 409
        )
        assert f"already takes part in measurement {first['id']} (queued)" in detail
    expect(_state(agent, first["id"], "running"), 200)
    detail = _detail(
        alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "b"}), 409
    )
    assert "(running)" in detail
    expect(_state(agent, first["id"], "error", fault="boom"), 200)
    expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "b"}), 201)


RTT_RESULT = {"samples": 3000, "min_us": 40.0, "max_us": 90.0, "percentiles": {"50.0": 50.0}}


def _two_hosts(cloud: Cloud) -> tuple[TestClient, TestClient, TestClient, dict[str, Any]]:
    """Client a on h1, peer b on h2, both on blue; the queued rtt a -> b."""
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.network("blue", "blue", shared=True)
    cloud.flavor("rt2", 2)
    h1 = cloud.host("h1", physnets=("blue",), nodes=1, cores_per_node=4)  # 3 RT pCPUs
    _active(alice, h1, "a")
    h2 = cloud.host("h2", physnets=("blue",), nodes=1, cores_per_node=4)
    b = _active(alice, h2, "b")
    assert b["host"] == "h2"
    body = {"kind": "rtt", "server": "a", "peer": "b"}
    return alice, h1, h2, expect(alice.post("/v1/measurements", json=body), 201)


def test_rtt_across_two_hosts_the_peers_host_serves_first(cloud: Cloud) -> None:
    alice, h1, h2, m = _two_hosts(cloud)
    assert (m["host"], m["peer_host"], m["peer_state"]) == ("h1", "h2", "queued")
    assert expect(h1.get("/v1/agent/measurements"), 200) == []  # the client waits
    [serve] = expect(h2.get("/v1/agent/measurements"), 200)
    assert (serve["role"], serve["state"], serve["partner_state"]) == ("serve", "queued", "queued")
    assert serve["peer"]["name"] == "b"
    detail = _detail(_state(h1, m["id"], "running"), 409)
    assert "the peer's host does not serve yet (its half is queued)" in detail

    assert expect(_state(h2, m["id"], "running"), 200)["state"] == "running"
    assert expect(h1.get("/v1/agent/measurements"), 200) == []
    served = expect(_state(h2, m["id"], "serving"), 200)
    assert (served["role"], served["state"]) == ("serve", "running")
    [client] = expect(h1.get("/v1/agent/measurements"), 200)
    assert (client["role"], client["state"]) == ("client", "queued")
    assert client["partner_state"] == "serving"
    expect(_state(h1, m["id"], "running"), 200)
    [serve] = expect(h2.get("/v1/agent/measurements"), 200)
    assert serve["partner_state"] == "running"  # keep serving
    expect(_state(h1, m["id"], "done", result=RTT_RESULT), 200)
    [serve] = expect(h2.get("/v1/agent/measurements"), 200)
    assert serve["partner_state"] == "done"  # stop serving
    shown = expect(alice.get(f"/v1/measurements/{m['id']}"), 200)
    assert (shown["state"], shown["peer_state"]) == ("done", "serving")
    peer_facts = {"role": "server", "method": "probe-reboot"}
    expect(_state(h2, m["id"], "done", result=peer_facts), 200)
    assert expect(h2.get("/v1/agent/measurements"), 200) == []
    shown = expect(alice.get(f"/v1/measurements/{m['id']}"), 200)
    assert (shown["state"], shown["result"], shown["peer_state"], shown["peer_result"]) == (
        "done",
        RTT_RESULT,
        "done",
        peer_facts,
    )


def test_rtt_across_hosts_fails_when_the_peers_host_cannot_serve(cloud: Cloud) -> None:
    alice, h1, h2, m = _two_hosts(cloud)
    expect(_state(h2, m["id"], "running"), 200)
    expect(_state(h2, m["id"], "error", fault="sockperf server did not bind"), 200)
    shown = expect(alice.get(f"/v1/measurements/{m['id']}"), 200)
    assert (shown["state"], shown["peer_state"]) == ("error", "error")
    assert shown["fault"] == "the peer's host h2 could not serve: sockperf server did not bind"
    assert expect(h1.get("/v1/agent/measurements"), 200) == []
    assert expect(h2.get("/v1/agent/measurements"), 200) == []
    # the instances are free again
    expect(alice.post("/v1/measurements", json={"kind": "rtt", "server": "a", "peer": "b"}), 201)


def test_a_client_half_that_ends_first_closes_the_serving_half(cloud: Cloud) -> None:
    alice, h1, h2, m = _two_hosts(cloud)
    expect(alice.delete(f"/v1/instances/{m['server']}"), 204)  # abandoned at h1's next fetch
    assert expect(h1.get("/v1/agent/measurements"), 200) == []
    shown = expect(alice.get(f"/v1/measurements/{m['id']}"), 200)
    assert (shown["state"], shown["peer_state"]) == ("error", "error")
    assert shown["peer_fault"] == "not started: the client's half ended first"
    assert expect(h2.get("/v1/agent/measurements"), 200) == []


def test_the_serving_half_follows_its_own_moves(cloud: Cloud) -> None:
    alice, h1, h2, m = _two_hosts(cloud)
    assert _detail(_state(h2, m["id"], "serving"), 409) == (
        f"the serving half of measurement {m['id']} is queued: an agent may move it to "
        "error, running, not serving"
    )
    assert "is queued: an agent may move it to error, running, not done" in _detail(
        _state(h2, m["id"], "done", result={"role": "server"}), 409
    )
    expect(_state(h2, m["id"], "running"), 200)
    expect(_state(h2, m["id"], "running"), 200)  # idempotent
    detail = _detail(_state(h1, m["id"], "serving"), 409)
    assert "is queued: an agent may move it to error, running, not serving" in detail
    detail = _detail(alice.delete(f"/v1/measurements/{m['id']}"), 409)
    assert "is running on host h2" in detail
    h3 = cloud.host("h3", physnets=("blue",))
    expect(_state(h3, m["id"], "error", fault="not mine"), 404)


def test_a_host_serving_past_measurements_can_be_removed(cloud: Cloud) -> None:
    alice, h1, h2, m = _two_hosts(cloud)
    expect(_state(h2, m["id"], "running"), 200)
    expect(_state(h2, m["id"], "serving"), 200)
    expect(_state(h1, m["id"], "running"), 200)
    expect(_state(h1, m["id"], "error", fault="no answer"), 200)
    expect(_state(h2, m["id"], "done", result={"role": "server"}), 200)
    expect(alice.delete(f"/v1/instances/{m['peer']}"), 204)
    expect(h2.post(f"/v1/agent/instances/{m['peer']}/state", json={"state": "deleted"}), 200)
    expect(cloud.admin.delete("/v1/hosts/h2"), 204)
    expect(alice.get(f"/v1/measurements/{m['id']}"), 404)


def test_members_see_and_measure_only_their_projects_instances(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    cloud.project("p2")
    bob = cloud.member("bob", "p2")
    vm = _active(alice, agent, "vm1")
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201)
    for ref in (vm["id"], "vm1"):
        body = {"kind": "cyclictest", "server": ref}
        assert "not found" in _detail(bob.post("/v1/measurements", json=body), 404)
    assert "not found" in _detail(bob.get(f"/v1/measurements/{m['id']}"), 404)
    assert expect(bob.get("/v1/measurements"), 200) == []
    assert expect(bob.get("/v1/measurements?all_projects=true"), 200) == []
    expect(bob.delete(f"/v1/measurements/{m['id']}"), 204)  # as if unknown
    assert expect(alice.get(f"/v1/measurements/{m['id']}"), 200)["state"] == "queued"
    # an admin sees every project's, and may measure any instance by id
    assert expect(cloud.admin.get("/v1/measurements"), 200) == []
    [seen] = expect(cloud.admin.get("/v1/measurements?all_projects=true"), 200)
    assert seen["id"] == m["id"]
    expect(cloud.admin.get(f"/v1/measurements/{m['id']}"), 200)
    vm2 = _active(alice, agent, "vm2")
    by_admin = expect(
        cloud.admin.post("/v1/measurements", json={"kind": "cyclictest", "server": vm2["id"]}),
        201,
    )
    assert by_admin["project"] == "p1"
    assert agent.get("/v1/measurements").status_code == 403  # agents use /v1/agent


def test_agents_see_and_report_only_their_hosts(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    other = cloud.host("h2")
    _active(alice, agent, "vm1")
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201)
    assert expect(other.get("/v1/agent/measurements"), 200) == []
    assert "not found on this host" in _detail(_state(other, m["id"], "running"), 404)
    assert "not found" in _detail(_state(agent, "not-a-uuid", "running"), 404)
    assert alice.get("/v1/agent/measurements").status_code == 403


def test_agent_state_machine_refuses_what_does_not_follow(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    _active(alice, agent, "vm1")
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201)
    detail = _detail(_state(agent, m["id"], "done", result={"x": 1}), 409)
    assert "is queued: an agent may move it to error, running, not done" in detail
    expect(_state(agent, m["id"], "running"), 200)
    assert "needs the result" in _detail(_state(agent, m["id"], "done"), 422)
    assert "result" in _detail(_state(agent, m["id"], "done", result=[1, 2]), 422)
    big = {"samples": "x" * (2 * 1024 * 1024)}
    assert "byte limit" in _detail(_state(agent, m["id"], "done", result=big), 413)
    assert "state" in _detail(_state(agent, m["id"], "queued"), 422)
    expect(_state(agent, m["id"], "done", result={"ok": True}), 200)
    expect(_state(agent, m["id"], "done", result={"ok": True}), 200)  # idempotent
    assert "is done: an agent may move it to nothing" in _detail(
        _state(agent, m["id"], "error", fault="late"), 409
    )
    assert expect(alice.get(f"/v1/measurements/{m['id']}"), 200)["result"] == {"ok": True}


def test_error_report_keeps_the_fault(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    _active(alice, agent, "vm1")
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201)
    expect(_state(agent, m["id"], "error", fault="guest did not boot"), 200)
    shown = expect(alice.get(f"/v1/measurements/{m['id']}"), 200)
    assert (shown["state"], shown["fault"]) == ("error", "guest did not boot")
    assert shown["finished_at"] is not None


def test_measurement_is_abandoned_when_its_instance_goes(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    vm = _active(alice, agent, "vm1")
    _active(alice, agent, "vm2")
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201)
    rtt = expect(
        alice.post("/v1/measurements", json={"kind": "rtt", "server": "vm2", "peer": vm["id"]}),
        409,  # vm1 is busy
    )
    assert "already takes part" in rtt["detail"]
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    assert expect(agent.get("/v1/agent/measurements"), 200) == []
    shown = expect(alice.get(f"/v1/measurements/{m['id']}"), 200)
    assert shown["state"] == "error"
    assert shown["fault"] == f"instance vm1 ({vm['id']}) is deleting: measurement abandoned"


def test_delete_is_idempotent_but_not_while_running(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    _active(alice, agent, "vm1")
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201)
    expect(alice.delete(f"/v1/measurements/{m['id']}"), 204)
    expect(alice.delete(f"/v1/measurements/{m['id']}"), 204)
    expect(alice.delete("/v1/measurements/nonsense"), 204)
    assert alice.get(f"/v1/measurements/{m['id']}").status_code == 404
    assert "not found on this host" in _detail(_state(agent, m["id"], "running"), 404)
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201)
    expect(_state(agent, m["id"], "running"), 200)
    assert "is running on host h1" in _detail(alice.delete(f"/v1/measurements/{m['id']}"), 409)
    expect(_state(agent, m["id"], "done", result={}), 200)
    expect(alice.delete(f"/v1/measurements/{m['id']}"), 204)
    assert expect(alice.get("/v1/measurements"), 200) == []


def test_a_waived_hosts_measurement_says_it_assures_nothing(cloud: Cloud, app: FastAPI) -> None:
    alice, agent = _setup(cloud)
    vm = _active(alice, agent, "vm1")
    waiver = "lab host: SMT on, rt_throttling on"
    with app.state.services.db.write() as s:
        inst = s.get(Instance, vm["id"])
        assert inst is not None
        inst.rt_waiver = waiver
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201)
    assert m["rt_waiver"] == waiver
    with app.state.services.db.read() as s:
        row = s.get(Measurement, m["id"])
        assert row is not None and row.host_id is not None


def test_garbage_ids_never_give_a_500(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    for bad in ("%00", "x" * 300, "00000000-0000-0000-0000-000000000000"):
        assert alice.get(f"/v1/measurements/{bad}").status_code == 404
        assert alice.delete(f"/v1/measurements/{bad}").status_code == 204
        assert _state(agent, bad, "running").status_code == 404
    body = {"kind": "cyclictest", "server": "\x00"}
    assert 400 <= alice.post("/v1/measurements", json=body).status_code < 500


def test_a_host_with_past_measurements_can_be_removed(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    vm = _active(alice, agent, "vm1")
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201)
    expect(_state(agent, m["id"], "running"), 200)
    expect(_state(agent, m["id"], "done", result=CYCLICTEST_RESULT), 200)
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "deleted"}), 200)
    expect(cloud.admin.delete("/v1/hosts/h1"), 204)
    expect(alice.get(f"/v1/measurements/{m['id']}"), 404)


def test_measurements_come_in_pages_newest_first(cloud: Cloud, clock: FakeClock) -> None:
    alice, agent = _setup(cloud)
    _active(alice, agent, "vm1")
    made = []
    for _ in range(3):  # one at a time per instance: each is finished before the next
        m = expect(
            alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201
        )
        expect(_state(agent, m["id"], "running"), 200)
        expect(_state(agent, m["id"], "done", result={}), 200)
        made.append(m["id"])
        clock.advance(1)
    first = expect(alice.get("/v1/measurements", params={"limit": 2}), 200)
    rest = expect(
        alice.get("/v1/measurements", params={"limit": 2, "marker": first[-1]["id"]}), 200
    )
    assert [m["id"] for m in first + rest] == made[::-1]
    assert "give the last id seen" in _detail(
        alice.get("/v1/measurements", params={"marker": "nope"}), 400
    )
