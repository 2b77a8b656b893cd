"""Guests another engine (Nova) built: an OpenStack-mode host registers as such, is never
scheduled to, and its agent's verdicts and measurements are kept for admins.

The verdict set is replaced per host (a guest that left the host leaves its row,
first_seen stays, changed_at moves only with the verdict); a verdict goes stale
with its host's agent; only admins read them; an rtkvm host cannot report them;
a host with rtkvm instances cannot turn into Nova's; removing the host forgets
them; the measurements come back in the shape `rtkvm report build` reads."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from rtkvm.api.testing import Cloud, FakeClock, expect
from rtkvm.cli.main import cli
from rtkvm.measure import cyclictest
from rtkvm.measure.report import load
from rtkvm.scheduler.fakehosts import fake_host

VERDICTS = "/v1/agent/guests/verdicts"
HOST_2THREADS = Path(__file__).parents[1] / "measure" / "data" / "host_2threads.txt"


def _guest(name: str, verdict: str = "verified", **more: Any) -> dict[str, Any]:
    sid = more.pop("server_id", str(uuid.uuid4()))
    summary = f"{verdict}: fifo/40 on vCPU 1" + (
        "; vCPU 1 is other/0" if verdict != "verified" else ""
    )
    return {
        "server_id": sid,
        "name": name,
        "domain": f"instance-{name}",
        "flavor": "rt.p40",
        "verdict": verdict,
        "summary": summary,
        "policy": "fifo",
        "priority": 40,
        "rt_vcpus": "1",
        "reasons": [] if verdict == "verified" else ["vCPU 1 is other/0"],
        "waived": {"memory.locked": "no_cap_sys_resource"},
        **more,
    }


def test_the_set_is_replaced_per_host_and_first_seen_kept(cloud: Cloud, clock: FakeClock) -> None:
    nova1 = cloud.host("c1", engine="openstack", nodes=1, cores_per_node=4)
    nova2 = cloud.host("c2", engine="openstack", nodes=1, cores_per_node=4)
    a, b = _guest("a"), _guest("b", "degraded")
    got = expect(nova1.put(VERDICTS, json={"guests": [a, b]}), 200)
    assert [(g["name"], g["verdict"], g["host"]) for g in got] == [
        ("a", "verified", "c1"),
        ("b", "degraded", "c1"),
    ]
    expect(nova2.put(VERDICTS, json={"guests": [_guest("z")]}), 200)

    clock.advance(10)
    b_ok = {**b, "verdict": "verified", "summary": "verified: fifo/40 on vCPU 1", "reasons": []}
    expect(nova1.put(VERDICTS, json={"guests": [b_ok]}), 200)  # a left the host
    rows = expect(cloud.admin.get("/v1/guest-verdicts", params={"host": "c1"}), 200)
    assert [r["name"] for r in rows] == ["b"]
    [row] = rows
    assert (row["first_seen"], row["changed_at"], row["checked_at"]) == (
        clock.now - 10,
        clock.now,
        clock.now,
    )
    assert row["waived"] == {"memory.locked": "no_cap_sys_resource"} and not row["stale"]

    clock.advance(10)
    expect(nova1.put(VERDICTS, json={"guests": [b_ok]}), 200)
    [row] = expect(cloud.admin.get("/v1/guest-verdicts", params={"host": "c1"}), 200)
    assert row["changed_at"] == clock.now - 10  # same verdict: not a change

    every = expect(cloud.admin.get("/v1/guest-verdicts"), 200)
    assert [(r["host"], r["name"]) for r in every] == [("c1", "b"), ("c2", "z")]
    only = expect(cloud.admin.get("/v1/guest-verdicts", params={"verdict": "degraded"}), 200)
    assert only == []

    clock.advance(3600)  # the agents fell silent
    assert all(r["stale"] for r in expect(cloud.admin.get("/v1/guest-verdicts"), 200))


def test_the_nodes_waiver_shows_on_the_host_and_cannot_be_set_through_the_api(
    cloud: Cloud,
) -> None:
    nova = cloud.host("c1", engine="openstack", verdict="not-ready", nodes=1, cores_per_node=4)
    expect(nova.put(VERDICTS, json={"guests": [], "rt_waiver": "lab bench"}), 200)
    host = expect(cloud.admin.get("/v1/hosts/c1"), 200)
    assert (host["engine"], host["rt_waiver"]) == ("openstack", "lab bench")
    refused = expect(cloud.admin.patch("/v1/hosts/c1", json={"rt_waiver": None}), 409)
    assert "rtkvm openstack waiver" in refused["detail"]
    expect(nova.put(VERDICTS, json={"guests": []}), 200)
    assert expect(cloud.admin.get("/v1/hosts/c1"), 200)["rt_waiver"] is None
    expect(nova.put(VERDICTS, json={"guests": [], "rt_waiver": "   "}), 200)  # blank: none
    assert expect(cloud.admin.get("/v1/hosts/c1"), 200)["rt_waiver"] is None


def test_rtkvm_never_places_a_server_on_novas_host(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.host("c1", engine="openstack", nodes=1, cores_per_node=8)
    cloud.flavor("rt2", 2)
    refused = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 409)
    assert "1 host built by Nova" in refused["detail"]
    assert "rtkvm never places there" in refused["detail"]


def test_bad_reports_are_refused_with_what_to_change(cloud: Cloud) -> None:
    own = cloud.host("h1", nodes=1, cores_per_node=4)
    refused = expect(own.put(VERDICTS, json={"guests": []}), 409)
    assert "rtkvm openstack agent" in refused["detail"]
    nova = cloud.host("c1", engine="openstack", nodes=1, cores_per_node=4)
    twice = _guest("a")
    refused = expect(nova.put(VERDICTS, json={"guests": [twice, twice]}), 422)
    assert "reported twice" in refused["detail"]
    expect(nova.put(VERDICTS, json={"guests": [_guest("a", verdict="fine")]}), 422)
    expect(nova.put(VERDICTS, json={"guests": [_guest("a", server_id="../x")]}), 422)
    expect(nova.put(VERDICTS, json={"guests": [_guest("a", priority=100)]}), 422)
    no_latency = {"server_id": str(uuid.uuid4()), "server_name": "a", "result": {}}
    refused = expect(nova.post("/v1/agent/guests/measurements", json=no_latency), 422)
    assert "latency" in refused["detail"]
    assert expect(cloud.admin.get("/v1/guest-verdicts"), 200) == []  # nothing half-stored


def test_only_admins_read_them_and_only_agents_report(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    nova = cloud.host("c1", engine="openstack", nodes=1, cores_per_node=4)
    g = _guest("a")
    expect(nova.put(VERDICTS, json={"guests": [g]}), 200)
    assert alice.get("/v1/guest-verdicts").status_code == 403
    assert nova.get("/v1/guest-verdicts").status_code == 403
    assert alice.put(VERDICTS, json={"guests": []}).status_code == 403
    assert cloud.admin.get(f"/v1/guest-verdicts/{uuid.uuid4()}").status_code == 404
    assert cloud.admin.get("/v1/guest-verdicts", params={"host": "nope"}).status_code == 404


def test_a_host_with_rtkvm_instances_cannot_become_novas(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("h1", nodes=1, cores_per_node=4)
    cloud.flavor("rt2", 2)
    expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    report = _report_of()
    report["engine"] = "openstack"
    refused = expect(agent.put("/v1/agent/host", json=report), 409)
    assert "delete them" in refused["detail"]
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["engine"] == "rtkvm"


def _report_of() -> dict[str, Any]:
    fake = fake_host(nodes=1, cores_per_node=4)
    return {
        "topology": fake.topology.model_dump(),
        "plan": fake.plan.model_dump(mode="json"),
        "doctor": {"verdict": "ready", "failed": []},
        "dataplane_state": "ready",
        "physnets": [],
    }


def test_measurements_are_kept_read_back_and_reported(cloud: Cloud, tmp_path: Path) -> None:
    nova = cloud.host("c1", engine="openstack", nodes=1, cores_per_node=4)
    g = _guest("a")
    expect(nova.put(VERDICTS, json={"guests": [g]}), 200)
    result = {
        "guest": "nova:a",
        "server_id": g["server_id"],
        "accel": "tcg",
        "guest_realtime": True,
        "cyclictest": "-p 90",
        "latency": cyclictest.parse(HOST_2THREADS.read_text()).to_dict(),
    }
    body = {"server_id": g["server_id"], "server_name": "a", "result": result}
    kept = expect(nova.post("/v1/agent/guests/measurements", json=body), 201)
    assert kept["emulated"] is True and kept["host"] == "c1"
    shown = expect(cloud.admin.get(f"/v1/guest-verdicts/{g['server_id']}"), 200)
    assert shown["verdict"]["name"] == "a"
    assert [m["id"] for m in shown["measurements"]] == [kept["id"]]

    listed = expect(
        cloud.admin.get("/v1/guest-measurements", params={"server": g["server_id"]}), 200
    )
    [entry] = load(listed, "api")
    assert (entry.instance, entry.host, entry.accel) == ("nova:a", "c1", "tcg")

    # the CLI: list exits 0 (nothing degraded), show prints the verdict and the warning
    runner = CliRunner()
    obj = {"client": cloud.api}
    out = runner.invoke(cli, ["cloud", "guest", "list"], obj=obj)
    assert out.exit_code == 0, out.output
    assert "verified" in out.output and g["server_id"] in out.output
    out = runner.invoke(cli, ["cloud", "guest", "show", g["server_id"]], obj=obj)
    assert out.exit_code == 0, out.output
    assert "fifo/40 on vCPU 1" in out.output and "TCG" in out.output
    saved = tmp_path / "m.json"
    out = runner.invoke(cli, ["cloud", "guest", "measurements", "-f", "json"], obj=obj)
    saved.write_text(out.output)
    assert load(json.loads(saved.read_text()), str(saved))[0].instance == "nova:a"

    # a degraded guest makes `guest list` exit 1
    bad = _guest("b", "degraded")
    expect(nova.put(VERDICTS, json={"guests": [g, bad]}), 200)
    out = runner.invoke(cli, ["cloud", "guest", "list"], obj=obj)
    assert out.exit_code == 1 and "degraded" in out.output

    expect(cloud.admin.delete("/v1/hosts/c1"), 204)  # removing the host forgets them
    assert expect(cloud.admin.get("/v1/guest-verdicts"), 200) == []
    assert expect(cloud.admin.get("/v1/guest-measurements"), 200) == []


def test_admins_read_the_registered_plan(cloud: Cloud) -> None:
    cloud.api.enroll_host("late")
    refused = expect(cloud.admin.get("/v1/hosts/late/plan"), 409)
    assert "start its agent" in refused["detail"]
    cloud.host("c1", engine="openstack", nodes=1, cores_per_node=4)
    got = expect(cloud.admin.get("/v1/hosts/c1/plan"), 200)
    assert got["engine"] == "openstack"
    assert got["plan"] == fake_host(nodes=1, cores_per_node=4).plan.model_dump(mode="json")
    out = CliRunner().invoke(cli, ["cloud", "host", "plan", "c1"], obj={"client": cloud.api})
    assert out.exit_code == 0 and "rt_vcpu" in out.output, out.output
