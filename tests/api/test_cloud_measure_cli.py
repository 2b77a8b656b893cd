"""`rtkvm cloud measure ...` through the typed client and the real API, a fake agent reporting."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rtkvm.api.testing import ADMIN_TOKEN, Cloud, expect
from rtkvm.cli import cloud_measure
from rtkvm.cli.main import cli
from rtkvm.db.models import Instance
from rtkvm.errors import CloudError
from rtkvm.measure.report import measurement_warnings
from rtkvm.wire.user_client import CloudClient

CYCLICTEST = {
    "guest": "vm1",
    "accel": "kvm",
    "boot_seconds": 3.2,
    "run_seconds": 3.0,
    "guest_realtime": True,
    "cyclictest": "-l 3000 -i 1000",
    "latency": {
        "buckets": 2000,
        "overflowed": False,
        "threads": [
            {"thread": 0, "min_us": 2, "avg_us": 3, "max_us": 11},
            {"thread": 1, "min_us": 1, "avg_us": 4, "max_us": 17},
        ],
        "histogram": [],
    },
    "verify": {},
}
RTT = {
    "path": "guest c -> guest s",
    "samples": 20000,
    "min_us": 21.5,
    "max_us": 88.25,
    "avg_us": 25.0,
    "percentiles": {"50.0": 24.0, "90.0": 26.0, "99.0": 31.5, "99.9": 47.0, "99.99": 80.0},
    "unresolved": [],
    "histogram": {"bucket_us": 10.0, "counts": [0, 0, 19000, 1000]},
    "tool": "sockperf ping-pong --full-rtt",
    "warnings": [],
}


def run(cloud: Cloud, token: str, *args: str) -> Result:
    client = CloudClient(http=cloud.client(token))
    return CliRunner().invoke(cli, ["cloud", *args], obj={"client": client})


def _token(client: TestClient) -> str:
    return str(client.headers["Authorization"].split()[1])


def _setup(cloud: Cloud) -> tuple[str, TestClient]:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.network("blue", "blue", shared=True)
    cloud.flavor("rt2", 2)
    agent = cloud.host("h1", physnets=("blue",))
    for name in ("vm1", "vm2"):
        body = {"name": name, "flavor": "rt2", "networks": ["blue"]}
        vm = expect(alice.post("/v1/instances", json=body), 201)
        expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "active"}), 200)
    return _token(alice), agent


def _fake_agent(
    monkeypatch: pytest.MonkeyPatch, agent: TestClient, *reports: dict[str, Any]
) -> list[float]:
    """Each pause of the CLI's wait lets the agent send its next report on its work."""
    steps = list(reports)
    pauses: list[float] = []

    def step(seconds: float) -> None:
        pauses.append(seconds)
        if steps:
            [work] = expect(agent.get("/v1/agent/measurements"), 200)
            expect(agent.post(f"/v1/agent/measurements/{work['id']}/state", json=steps.pop(0)), 200)

    monkeypatch.setattr(cloud_measure, "sleep", step)
    return pauses


def test_cyclictest_waits_for_the_agent_and_prints_the_result(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    alice, agent = _setup(cloud)
    pauses = _fake_agent(
        monkeypatch, agent, {"state": "running"}, {"state": "done", "result": CYCLICTEST}
    )
    saved = tmp_path / "m.json"
    out = run(cloud, alice, "measure", "cyclictest", "vm1", "--loops", "500", "--save", str(saved))
    assert out.exit_code == 0, (out.output, out.exception)
    assert len(pauses) == 2
    assert ": running" in out.stderr and ": done" in out.stderr
    assert "WARNING" not in out.stderr
    assert "| 1      | 1   | 4   | 17  |" in out.stdout
    assert "overall max: 17 µs" in out.stdout
    data = json.loads(saved.read_text())
    assert (data["state"], data["result"], data["params"]["loops"]) == ("done", CYCLICTEST, 500)
    shown = json.loads(run(cloud, alice, "measure", "show", data["id"], "-f", "json").stdout)
    assert shown == data
    listing = run(cloud, alice, "measure", "list").stdout
    assert data["id"] in listing and "| done " in listing


def test_rtt_prints_percentiles(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, agent = _setup(cloud)
    _fake_agent(monkeypatch, agent, {"state": "running"}, {"state": "done", "result": RTT})
    args = ("measure", "rtt", "vm1", "vm2", "--seconds", "2", "--client-address", "10.9.0.1/24")
    out = run(cloud, alice, *args, "--server-address", "10.9.0.2/24")
    assert out.exit_code == 0, (out.output, out.exception)
    assert "round trip vm1 -> vm2 over blue" in out.stdout
    assert "| 20000   | 21.5 | 24.0 | 31.5 | 47.0  | 80.0   | 88.2 |" in out.stdout
    [m] = json.loads(run(cloud, alice, "measure", "list", "-f", "json").stdout)
    assert m["params"]["client_address"] == "10.9.0.1/24"


def test_tcg_and_waivers_are_loud(
    cloud: Cloud, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, agent = _setup(cloud)
    with app.state.services.db.write() as s:
        for inst in s.query(Instance).filter(Instance.name == "vm1"):
            inst.rt_waiver = "lab laptop"
    _fake_agent(
        monkeypatch,
        agent,
        {"state": "running"},
        {"state": "done", "result": {**CYCLICTEST, "accel": "tcg"}},
    )
    out = run(cloud, alice, "measure", "cyclictest", "vm1")
    assert out.exit_code == 0, (out.output, out.exception)
    assert (
        "WARNING: measured under TCG (emulation): these latencies are meaningless for real time"
        in out.stderr
    )
    assert "waived (lab laptop): these figures assure nothing" in out.stderr


def test_an_error_exits_1_with_the_fault(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, agent = _setup(cloud)
    _fake_agent(monkeypatch, agent, {"state": "error", "fault": "guest did not boot in 180 s"})
    out = run(cloud, alice, "measure", "cyclictest", "vm2")
    assert out.exit_code == 1
    assert "failed: guest did not boot in 180 s" in out.stderr


def test_no_wait_timeout_refusals_and_delete(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, agent = _setup(cloud)
    _fake_agent(monkeypatch, agent)  # the agent never reports
    out = run(cloud, alice, "measure", "cyclictest", "vm1", "--no-wait", "-f", "json")
    assert out.exit_code == 0, (out.output, out.exception)
    queued = json.loads(out.stdout)
    assert queued["state"] == "queued"
    out = run(cloud, alice, "measure", "cyclictest", "vm1")
    assert isinstance(out.exception, CloudError)
    assert out.exception.status == 409
    assert "already takes part" in str(out.exception)
    out = run(cloud, alice, "measure", "cyclictest", "vm2", "--timeout", "0")
    assert isinstance(out.exception, cloud_measure.MeasureTimeoutError)
    assert "still queued after 0 s" in str(out.exception)
    assert run(cloud, alice, "measure", "delete", queued["id"]).exit_code == 0
    out = run(cloud, alice, "measure", "show", queued["id"])
    assert isinstance(out.exception, CloudError) and out.exception.status == 404
    admin = run(cloud, ADMIN_TOKEN, "measure", "list", "--all-projects", "-f", "value")
    assert admin.stdout.count("queued") == 1  # vm2's


@pytest.mark.parametrize(
    ("helper", "expected"),
    [
        (measurement_warnings, []),
        (lambda m: cloud_measure.summary({**m, "result": CYCLICTEST}).splitlines()[-1], None),
    ],
)
def test_helpers_tolerate_a_bare_measurement(
    helper: Callable[[dict[str, Any]], Any], expected: Any
) -> None:
    m = {"kind": "cyclictest", "state": "done", "result": None, "rt_waiver": None}
    value = helper(m)
    if expected is not None:
        assert value == expected
    else:
        assert value == "overall max: 17 µs"
