"""RT waivers through the API: an admin sets and clears one (logged at WARNING), members
may not, a blank reason is refused; a waived host takes RT guests only when no RT-ready host
fits, and the instance placed there carries the waiver (to its agent as well)."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from rtkvm.api.testing import Cloud, FakeClock, expect


def _alice(cloud: Cloud) -> TestClient:
    cloud.project("p1")
    return cloud.member("alice", "p1")


def test_set_and_clear_a_waiver_logged_at_warning(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    cloud.host("lab", verdict="not-ready", nodes=1, cores_per_node=4)
    assert expect(cloud.admin.get("/v1/hosts/lab"), 200)["rt_waiver"] is None
    with caplog.at_level(logging.WARNING, logger="rtkvm.api.hosts"):
        out = expect(
            cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": "  demo on a laptop "}), 200
        )
    assert out["rt_waiver"] == "demo on a laptop"
    assert expect(cloud.admin.get("/v1/hosts"), 200)[0]["rt_waiver"] == "demo on a laptop"
    [record] = [r for r in caplog.records if r.name == "rtkvm.api.hosts"]
    assert record.levelno == logging.WARNING
    assert "lab" in record.getMessage() and "demo on a laptop" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rtkvm.api.hosts"):
        out = expect(cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": None}), 200)
    assert out["rt_waiver"] is None
    [record] = [r for r in caplog.records if r.name == "rtkvm.api.hosts"]
    assert "cleared" in record.getMessage() and "demo on a laptop" in record.getMessage()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"rt_waiver": ""}, "needs a reason"),
        ({"rt_waiver": "   "}, "needs a reason"),
        ({"rt_waiver": "x" * 501}, "rt_waiver"),
        ({}, "give rt_waiver"),
        ({"pcpu_share": 2}, "under an RT waiver only"),
        ({"rt_waiver": "lab", "pcpu_share": 9}, "pcpu_share"),
        ({"rt_waiver": "lab", "colour": "red"}, "colour"),
    ],
)
def test_bad_waivers_say_what_to_give(cloud: Cloud, body: object, words: str) -> None:
    cloud.host("lab", verdict="not-ready", nodes=1, cores_per_node=4)
    r = cloud.admin.patch("/v1/hosts/lab", json=body)
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]
    assert expect(cloud.admin.get("/v1/hosts/lab"), 200)["rt_waiver"] is None


def test_members_may_not_waive_and_unknown_hosts_are_404(cloud: Cloud) -> None:
    alice = _alice(cloud)
    cloud.host("lab", verdict="not-ready", nodes=1, cores_per_node=4)
    r = alice.patch("/v1/hosts/lab", json={"rt_waiver": "mine"})
    assert r.status_code == 403
    assert "admin" in r.json()["detail"]
    r = cloud.admin.patch("/v1/hosts/nope", json={"rt_waiver": "lab"})
    assert r.status_code == 404
    assert "rtkvm cloud host list" in r.json()["detail"]


def test_a_waived_host_takes_rt_guests_and_they_carry_the_waiver(cloud: Cloud) -> None:
    alice = _alice(cloud)
    agent = cloud.host("lab", verdict="not-ready", nodes=1, cores_per_node=5)
    cloud.flavor("rt2", 2)
    r = alice.post("/v1/instances", json={"name": "vm0", "flavor": "rt2"})
    assert r.status_code == 409
    assert "1 host not RT-ready" in r.json()["detail"]
    assert "--rt-waiver REASON" in r.json()["detail"]
    expect(cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": "lab demo"}), 200)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    assert (vm["host"], vm["rt_waiver"]) == ("lab", "lab demo")
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["rt_waiver"] == "lab demo"
    [work] = expect(agent.get("/v1/agent/instances"), 200)
    assert work["rt_waiver"] == "lab demo"
    # clearing the waiver keeps the note on what was placed, and admits nothing new
    expect(cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": None}), 200)
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["rt_waiver"] == "lab demo"
    assert alice.post("/v1/instances", json={"name": "vm2", "flavor": "rt2"}).status_code == 409


def test_ready_hosts_are_used_before_waived_ones(cloud: Cloud) -> None:
    alice = _alice(cloud)
    cloud.host("a-lab", verdict="not-ready", nodes=1, cores_per_node=5)
    expect(cloud.admin.patch("/v1/hosts/a-lab", json={"rt_waiver": "lab"}), 200)
    cloud.host("z-ready", nodes=1, cores_per_node=5)  # 4 RT pCPUs: two rt2 guests
    cloud.flavor("rt2", 2)
    placed = [
        expect(alice.post("/v1/instances", json={"name": f"vm{i}", "flavor": "rt2"}), 201)
        for i in range(3)
    ]
    assert [(v["host"], v["rt_waiver"]) for v in placed] == [
        ("z-ready", None),
        ("z-ready", None),
        ("a-lab", "lab"),
    ]


def test_a_waiver_on_a_ready_host_is_not_copied(cloud: Cloud) -> None:
    alice = _alice(cloud)
    cloud.host("h1", nodes=1, cores_per_node=5)
    expect(cloud.admin.patch("/v1/hosts/h1", json={"rt_waiver": "just in case"}), 200)
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    assert vm["rt_waiver"] is None


def test_the_waiver_does_not_override_a_down_agent(cloud: Cloud, clock: FakeClock) -> None:
    alice = _alice(cloud)
    cloud.host("lab", verdict="not-ready", nodes=1, cores_per_node=5)
    expect(cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": "lab"}), 200)
    cloud.flavor("rt2", 2)
    clock.advance(61)
    r = alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"})
    assert r.status_code == 409
    assert "1 host down" in r.json()["detail"]
