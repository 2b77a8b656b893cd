"""Host qualification through the real API and CLI, a fake agent building and measuring.

`rtkvm cloud host qualify` boots probe servers on the host's free RT pCPUs
(admin host targeting), has each measured for the qualification, and the API
judges from those measurements alone; a cloud that requires qualified hosts
places RT servers only on them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.api.test_cloud_measure_cli import RTT

from rtkvm.api.app import create_app
from rtkvm.api.testing import ADMIN_TOKEN, Cloud, FakeClock, expect
from rtkvm.cli import cloud_qualify, cloud_wait
from rtkvm.cli.main import cli
from rtkvm.scheduler.fakehosts import fake_host
from rtkvm.settings import Settings
from rtkvm.wire.user_client import CloudClient


def cyclictest(worst: dict[int, int], pins: list[list[int]], accel: str = "kvm") -> dict[str, Any]:
    """A probe's cyclictest result: one thread per RT vCPU, its max from its pCPU's figure."""
    threads = [
        {
            "thread": i,
            "min_us": 1,
            "avg_us": 2,
            "max_us": worst.get(pcpu, 9),
            "samples": 3000,
            "in_histogram": 3000,
            "overflows": 0,
            "percentiles_us": None,
        }
        for i, (_vcpu, pcpu) in enumerate(pins)
    ]
    return {
        "guest": "probe",
        "accel": accel,
        "latency": {"buckets": 2000, "overflowed": False, "threads": threads, "histogram": []},
    }


class FakeAgent:
    """Each pause of the CLI lets the host's agent build, delete and measure what waits."""

    def __init__(self, agent: TestClient, worst: dict[int, int] | None = None) -> None:
        self.agent = agent
        self.worst = worst or {}
        self.accel = "kvm"
        self.fail_rtt = False
        self.fail_build = False
        self.built: list[str] = []

    def step(self, seconds: float) -> None:
        del seconds
        for inst in expect(self.agent.get("/v1/agent/instances"), 200):
            url = f"/v1/agent/instances/{inst['id']}/state"
            if inst["state"] == "building" and self.fail_build:
                report = {"state": "error", "fault": "no hugepages left"}
                expect(self.agent.post(url, json=report), 200)
            elif inst["state"] == "building":
                expect(self.agent.post(url, json={"state": "active"}), 200)
                self.built.append(inst["name"])
            elif inst["state"] == "deleting":
                expect(self.agent.post(url, json={"state": "deleted"}), 200)
        for m in expect(self.agent.get("/v1/agent/measurements"), 200):
            url = f"/v1/agent/measurements/{m['id']}/state"
            expect(self.agent.post(url, json={"state": "running"}), 200)
            if m["kind"] == "cyclictest":
                pins = m["server"]["placement"]["vcpu_pins"]
                report = {"state": "done", "result": cyclictest(self.worst, pins, self.accel)}
            elif self.fail_rtt:
                report = {"state": "error", "fault": "sockperf got no answer"}
            else:
                report = {"state": "done", "result": RTT}
            expect(self.agent.post(url, json=report), 200)


def run(cloud: Cloud, token: str, *args: str) -> Result:
    client = CloudClient(http=cloud.client(token))
    return CliRunner().invoke(cli, ["cloud", *args], obj={"client": client})


def _setup(cloud: Cloud, physnets: tuple[str, ...] = ("blue",), **shape: Any) -> TestClient:
    """Host h1 (RT pCPUs 1 and 2), a mixed probe flavor (one RT pCPU), its networks."""
    for net in physnets:
        cloud.network(net, net, shared=True)
    cloud.flavor("probe", 2, hw__cpu_policy="mixed")
    body = {"name": "shared", "vcpus": 1, "ram": 512, "extra_specs": {"hw:cpu_policy": "shared"}}
    cloud.api.create_flavor(body)
    shape = {"nodes": 1, "cores_per_node": 3, **shape}
    return cloud.host("h1", physnets=physnets, **shape)


def _patch(monkeypatch: pytest.MonkeyPatch, agent: FakeAgent) -> None:
    """The CLI's waits (its own and cloud_wait's) let the fake agent act."""
    monkeypatch.setattr(cloud_qualify, "sleep", agent.step)
    monkeypatch.setattr(cloud_wait, "sleep", agent.step)


@pytest.fixture
def fake(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> FakeAgent:
    agent = FakeAgent(_setup(cloud))
    _patch(monkeypatch, agent)
    return agent


def test_a_host_qualifies_on_every_free_pcpu_and_network(
    cloud: Cloud, fake: FakeAgent, tmp_path: Path
) -> None:
    fake.worst = {1: 14, 2: 23}
    saved = tmp_path / "q.json"
    args = ("host", "qualify", "h1", "--flavor", "probe", "--max-latency-us", "50")
    out = run(cloud, ADMIN_TOKEN, *args, "--save", str(saved))
    assert out.exit_code == 0, (out.output, out.exception)
    q = json.loads(saved.read_text())
    assert (q["state"], q["free_pcpus"], q["held_pcpus"], q["networks"]) == (
        "passed",
        "1-2",
        "",
        ["blue"],
    )
    proof = q["proof"]
    assert [(p["pcpu"], p["worst_us"]) for p in proof["pcpus"]] == [(1, 14.0), (2, 23.0)]
    assert proof["worst_us"] == 23.0 and proof["emulated"] is False
    [net] = proof["networks"]
    assert (net["network"], net["samples"], net["p99_99_us"], net["max_us"]) == (
        "blue",
        20000,
        80.0,
        88.25,
    )
    assert len(q["measurements"]) == 3  # two cyclictests, one round trip
    assert "| 2    | 23       | 3000" in out.stdout
    assert "| blue    | 20000   | 31.5   | 80        | 88.25  |" in out.stdout
    # the probe servers are gone, the host shows its proof
    assert cloud.api.servers(all_projects=True) == []
    host = cloud.api.host("h1")
    assert host.qualified and host.qualification is not None
    assert (host.qualification.id, host.qualification.worst_us) == (q["id"], 23.0)
    listing = run(cloud, ADMIN_TOKEN, "host", "list").stdout
    assert "yes (worst 23 µs" in listing
    history = json.loads(
        run(cloud, ADMIN_TOKEN, "host", "qualifications", "h1", "-f", "json").stdout
    )
    assert [h["id"] for h in history] == [q["id"]] and history[0]["current"] is True
    browser = cloud.client(None)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert browser.post("/ui/session", headers=auth, json={}).status_code == 200
    page = browser.get("/ui/hosts").text
    assert '<span class="badge b-ok">qualified</span> worst 23 µs' in page


def test_over_the_limit_the_host_fails_loudly_and_loses_its_proof(
    cloud: Cloud, fake: FakeAgent
) -> None:
    assert run(cloud, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "probe").exit_code == 0
    assert cloud.api.host("h1").qualified
    fake.worst = {2: 120}
    out = run(
        cloud, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "probe", "--max-latency-us", "50"
    )
    assert out.exit_code == 1, out.output
    assert "did not qualify" in out.stderr and "2 (120 µs) exceed the limit of 50 µs" in out.stderr
    host = cloud.api.host("h1")
    assert not host.qualified
    assert host.qualification is not None and host.qualification.state == "failed"
    assert "no (last failed" in run(cloud, ADMIN_TOKEN, "host", "show", "h1").stdout


def test_a_failed_measurement_fails_the_host_but_keeps_an_earlier_proof(
    cloud: Cloud, fake: FakeAgent
) -> None:
    assert run(cloud, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "probe").exit_code == 0
    fake.fail_rtt = True
    out = run(cloud, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "probe")
    assert out.exit_code == 1
    assert "did not finish: sockperf got no answer" in out.stderr
    assert "network(s) blue got no round trip" in out.stderr
    assert cloud.api.host("h1").qualified  # incomplete, not over a limit: the last proof holds


def test_emulated_figures_are_recorded_as_such(cloud: Cloud, fake: FakeAgent) -> None:
    fake.accel = "tcg"
    out = run(cloud, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "probe")
    assert out.exit_code == 0
    assert "measured under emulation (TCG, no KVM)" in out.stderr
    assert cloud.api.host("h1").qualification.emulated  # type: ignore[union-attr]


def test_guests_on_the_host_are_left_alone_and_their_pcpus_unmeasured(
    cloud: Cloud, fake: FakeAgent
) -> None:
    tenant = cloud.api.create_server("tenant", "probe", [])
    fake.step(0)
    out = run(cloud, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "probe", "-f", "json")
    assert out.exit_code == 1, (out.output, out.exception)  # one free pCPU: no pair for blue
    q = json.loads(out.stdout)
    held = str(tenant.vcpu_pins[0][1])
    assert q["held_pcpus"] == held and held not in q["free_pcpus"]
    assert [p["pcpu"] for p in q["proof"]["pcpus"]] == [int(q["free_pcpus"])]
    assert q["proof"]["pcpus"][0]["worst_us"] == 9.0
    assert "network(s) blue got no round trip" in q["fault"]
    assert [s.name for s in cloud.api.servers(all_projects=True)] == ["tenant"]
    assert cloud.api.server(tenant.id).state == "active"


def test_a_second_network_gets_its_own_pair(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = FakeAgent(_setup(cloud, ("blue", "red")))
    _patch(monkeypatch, agent)
    out = run(cloud, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "probe", "-f", "json")
    assert out.exit_code == 0, (out.output, out.exception)
    q = json.loads(out.stdout)
    assert [n["network"] for n in q["proof"]["networks"]] == ["blue", "red"]
    assert all(n["max_us"] == 88.25 for n in q["proof"]["networks"])
    assert len(agent.built) == 4  # two on blue, then two on red


def test_a_probe_that_fails_to_build_abandons_the_qualification(
    cloud: Cloud, fake: FakeAgent
) -> None:
    out = run(cloud, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "shared")
    assert out.exit_code != 0
    assert "has no RT vCPU" in str(out.exception)
    assert cloud.api.qualifications("h1") == []  # refused before it began
    fake.fail_build = True
    out = run(cloud, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "probe")
    assert out.exit_code != 0
    assert "failed on host h1: no hugepages left" in str(out.exception)
    [q] = cloud.api.qualifications("h1")
    assert q.state == "abandoned" and not cloud.api.host("h1").qualified
    assert cloud.api.servers(all_projects=True) == []  # the probes were deleted


def test_a_host_whose_rt_pcpus_are_all_held_is_not_qualified(cloud: Cloud, fake: FakeAgent) -> None:
    for name in ("t1", "t2"):
        cloud.api.create_server(name, "probe", [])
    fake.step(0)
    out = run(cloud, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "probe")
    assert out.exit_code != 0
    assert "has no free RT pCPU (guests hold 1-2)" in str(out.exception)


def test_the_api_refuses_what_a_qualification_cannot_be(cloud: Cloud, fake: FakeAgent) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    assert alice.post("/v1/hosts/h1/qualifications", json={}).status_code == 403
    assert cloud.admin.post("/v1/hosts/nope/qualifications", json={}).status_code == 404
    bad = cloud.admin.post("/v1/hosts/h1/qualifications", json={"max_latency_us": -1})
    assert bad.status_code == 422
    q = expect(cloud.admin.post("/v1/hosts/h1/qualifications", json={}), 201)
    again = cloud.admin.post("/v1/hosts/h1/qualifications", json={})
    assert again.status_code == 409 and q["id"] in again.json()["detail"]
    # a member may not choose a host, nor measure for a qualification
    body = {"name": "x", "flavor": "probe", "host": "h1"}
    assert "only an admin" in alice.post("/v1/instances", json=body).json()["detail"]
    bad_host = cloud.admin.post("/v1/instances", json={**body, "host": "nope"})
    assert bad_host.status_code == 422 and "not enrolled" in bad_host.json()["detail"]
    vm = expect(alice.post("/v1/instances", json={"name": "mine", "flavor": "probe"}), 201)
    fake.step(0)
    mine = {"kind": "cyclictest", "server": vm["id"], "qualification": q["id"]}
    assert alice.post("/v1/measurements", json=mine).status_code == 403
    unknown = {**mine, "qualification": "0" * 36}
    refused = cloud.admin.post("/v1/measurements", json=unknown)
    assert refused.status_code == 422 and "not found" in refused.json()["detail"]
    # finish: nothing measured, it fails with the reasons; then it is over
    done = expect(cloud.admin.post(f"/v1/qualifications/{q['id']}/finish"), 200)
    assert done["state"] == "failed" and "were not measured" in done["fault"]
    assert cloud.admin.post(f"/v1/qualifications/{q['id']}/finish").status_code == 409
    assert cloud.admin.post(f"/v1/qualifications/{q['id']}/abandon").status_code == 409
    assert cloud.admin.get("/v1/qualifications/nope").status_code == 404


def test_a_measurement_must_be_of_a_probe_on_the_qualified_host(
    cloud: Cloud, fake: FakeAgent
) -> None:
    other = cloud.host("h2", physnets=("blue",), nodes=1, cores_per_node=3)
    fake_other = FakeAgent(other)
    q = expect(cloud.admin.post("/v1/hosts/h1/qualifications", json={}), 201)
    there = cloud.api.create_server("there", "probe", ["blue"], host="h2")
    fake_other.step(0)
    body = {"kind": "cyclictest", "server": there.id, "qualification": q["id"]}
    refused = cloud.admin.post("/v1/measurements", json=body)
    assert refused.status_code == 422 and "not on the host" in refused.json()["detail"]
    here = cloud.api.create_server("here", "probe", ["blue"], host="h1")
    fake.step(0)
    ok = expect(cloud.admin.post("/v1/measurements", json={**body, "server": here.id}), 201)
    assert ok["qualification"] == q["id"]
    early = cloud.admin.post(f"/v1/qualifications/{q['id']}/finish")
    assert early.status_code == 409 and ok["id"] in early.json()["detail"]
    gone = expect(cloud.admin.post(f"/v1/qualifications/{q['id']}/abandon"), 200)
    assert gone["state"] == "abandoned"
    late = cloud.admin.post("/v1/measurements", json={**body, "server": here.id})
    assert late.status_code == 409


@pytest.fixture
def strict(db_url: str, clock: FakeClock, tmp_path: Path) -> Iterator[Cloud]:
    """A cloud that requires RT hosts qualified within two hours."""
    settings = Settings(
        database_url=db_url,
        bootstrap_admin_token=ADMIN_TOKEN,
        image_store_dir=str(tmp_path / "image-store"),
        qualified_within_s=7200,
    )
    app: FastAPI = create_app(settings, clock=clock)
    helper = Cloud(app)
    yield helper
    helper.close()
    app.state.services.db.dispose()


def test_a_cloud_that_requires_qualified_hosts_places_rt_servers_only_there(
    strict: Cloud, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = FakeAgent(_setup(strict))
    _patch(monkeypatch, agent)
    refused = strict.admin.post("/v1/instances", json={"name": "rt", "flavor": "probe"})
    assert refused.status_code == 409
    assert "1 host not qualified" in refused.json()["detail"]
    assert "rtkvm cloud host qualify NAME" in refused.json()["detail"]
    # a shared (non-RT) server does not ask
    expect(strict.admin.post("/v1/instances", json={"name": "plain", "flavor": "shared"}), 201)
    assert run(strict, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "probe").exit_code == 0
    rt = expect(strict.admin.post("/v1/instances", json={"name": "rt", "flavor": "probe"}), 201)
    assert rt["host"] == "h1"
    expect(strict.admin.delete(f"/v1/instances/{rt['id']}"), 204)
    agent.step(0)
    clock.advance(7201)  # the proof is too old now
    expect(agent.agent.post("/v1/agent/heartbeat", json={}), 200)
    late = strict.admin.post("/v1/instances", json={"name": "rt2", "flavor": "probe"})
    assert late.status_code == 409 and "at most 2 hour(s) old" in late.json()["detail"]


def test_another_plan_or_wiring_drops_the_qualification(cloud: Cloud, fake: FakeAgent) -> None:
    assert run(cloud, ADMIN_TOKEN, "host", "qualify", "h1", "--flavor", "probe").exit_code == 0
    assert cloud.api.host("h1").qualified
    cloud.network("red", "red", shared=True)
    shape = fake_host(nodes=1, cores_per_node=3)
    report = {
        "topology": shape.topology.model_dump(),
        "plan": shape.plan.model_dump(mode="json"),
        "doctor": {"verdict": "ready", "failed": []},
        "dataplane_state": "ready",
        "physnets": ["blue"],
    }
    agent = fake.agent
    expect(agent.put("/v1/agent/host", json=report), 200)
    assert cloud.api.host("h1").qualified  # the same report: the proof holds
    host = expect(agent.put("/v1/agent/host", json={**report, "physnets": ["blue", "red"]}), 200)
    assert host["qualified"] is False
    assert "stale" in run(cloud, ADMIN_TOKEN, "host", "show", "h1").stdout
