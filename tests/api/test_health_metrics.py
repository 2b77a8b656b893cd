"""Liveness, readiness and Prometheus metrics of the API.

/healthz and /readyz answer without a token (a supervisor and a load balancer ask);
/readyz names a schema that is behind; /metrics is for admins and holds what an
operator graphs: hosts by readiness and engine, RT pCPUs, instances by state and RT
state, the scheduler's decision time, create-to-active time, heartbeat age, the
worst latency last measured per server and host (flagged when emulated)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from rtkvm.api.testing import Cloud, FakeClock, expect

from .test_measurements import CYCLICTEST_RESULT, _state


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_health_and_readiness_need_no_token(cloud: Cloud) -> None:
    anonymous = cloud.client(None)
    assert expect(anonymous.get("/healthz"), 200) == {"status": "ok"}
    assert expect(anonymous.get("/readyz"), 200) == {"status": "ready", "schema": "0020"}


def test_readiness_says_when_the_schema_is_behind(cloud: Cloud) -> None:
    services = cloud.app.state.services
    with services.db.write() as s:  # a database one migration behind the code
        s.execute(text("UPDATE alembic_version SET version_num = '0019'"))
    refused = expect(cloud.client(None).get("/readyz"), 503)
    assert "schema is at 0019, the code needs 0020" in refused["detail"]


def test_metrics_are_for_admins_and_hold_the_clouds_state(cloud: Cloud, clock: FakeClock) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    assert cloud.client(None).get("/metrics").status_code == 401
    assert alice.get("/metrics").status_code == 403
    agent = cloud.host("h1", nodes=1, cores_per_node=4)
    cloud.host("c1", engine="openstack", verdict="not-ready", nodes=1, cores_per_node=4)
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm1", "flavor": "rt2"}), 201)
    refused = alice.post("/v1/instances", json={"name": "big", "flavor": "rt2",
                                                "networks": ["nowhere"]})  # fmt: skip
    assert refused.status_code in (404, 409)
    clock.advance(4)
    rt = {"state": "verified", "reasons": [], "waived": {}}
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state",
                      json={"state": "active", "rt": rt}), 200)  # fmt: skip
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": "vm1"}), 201)
    expect(_state(agent, m["id"], "running"), 200)
    expect(_state(agent, m["id"], "done", result=CYCLICTEST_RESULT), 200)
    clock.advance(2)

    got = cloud.admin.get("/metrics")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/plain")
    samples = _samples(got.text)
    assert samples[("rtkvm_hosts", (("engine", "rtkvm"), ("readiness", "ready"),
                                    ("status", "up")))] == 1  # fmt: skip
    assert samples[("rtkvm_hosts", (("engine", "openstack"), ("readiness", "not-ready"),
                                    ("status", "up")))] == 1  # fmt: skip
    assert samples[("rtkvm_host_heartbeat_age_seconds", (("host", "h1"),))] == 6
    used = ("rtkvm_host_rt_pcpus", (("host", "h1"), ("kind", "used"), ("node", "0")))
    assert samples[used] == 2
    active = ("rtkvm_instances", (("rt_state", "verified"), ("state", "active")))
    assert samples[active] == 1
    assert samples[("rtkvm_schedule_seconds_count", (("outcome", "placed"),))] == 1
    assert samples[("rtkvm_create_to_active_seconds_count", ())] == 1
    assert samples[("rtkvm_create_to_active_seconds_sum", ())] == 4
    worst = ("rtkvm_server_worst_latency_us", (("emulated", "0"), ("host", "h1"),
                                               ("name", "vm1"), ("server", vm["id"])))  # fmt: skip
    assert samples[worst] == 17
    assert samples[("rtkvm_host_worst_latency_us", (("emulated", "0"), ("host", "h1")))] == 17
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)  # the server's last proof
    assert shown["last_proof"]["worst_us"] == 17 and shown["last_proof"]["emulated"] is False
    assert shown["last_proof"]["measurement"] == m["id"]
    listed = expect(alice.get("/v1/instances"), 200)
    assert [i["last_proof"]["worst_us"] for i in listed if i["id"] == vm["id"]] == [17]
