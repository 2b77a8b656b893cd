"""Lab pCPU sharing: on a waived host an admin lets up to N guests share each RT pCPU.

Only under a waiver; capacity scales by N; unshared pCPUs are used first; the
shared guests say so; the share cannot be lowered (nor the waiver cleared) while
guests share pCPUs; and freed slots are claimed again.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from rtkvm.api.testing import Cloud, expect
from rtkvm.scheduler.fakehosts import fake_host


def _lab(cloud: Cloud) -> tuple[TestClient, TestClient]:
    """A not-ready host with 2 RT pCPUs (3 cores, one housekeeping) and a member."""
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("lab", verdict="not-ready", nodes=1, cores_per_node=3)
    cloud.flavor("rt2", 2)
    return alice, agent


def _node(cloud: Cloud) -> dict[str, int]:
    host = expect(cloud.admin.get("/v1/hosts/lab"), 200)
    node: dict[str, int] = host["nodes"][0]
    return node


def test_sharing_needs_a_waiver_and_scales_capacity(cloud: Cloud) -> None:
    _lab(cloud)
    r = cloud.admin.patch("/v1/hosts/lab", json={"pcpu_share": 2})
    assert r.status_code == 422
    assert "under an RT waiver only" in r.json()["detail"]
    assert _node(cloud)["rt_total"] == 2
    out = expect(
        cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": "lab", "pcpu_share": 2}), 200
    )
    assert (out["pcpu_share"], out["nodes"][0]["rt_total"]) == (2, 4)


def test_two_guests_share_the_pcpus_then_nothing_more_fits(cloud: Cloud) -> None:
    alice, agent = _lab(cloud)
    expect(cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": "lab", "pcpu_share": 2}), 200)
    vm1 = expect(alice.post("/v1/instances", json={"name": "vm1", "flavor": "rt2"}), 201)
    vm2 = expect(alice.post("/v1/instances", json={"name": "vm2", "flavor": "rt2"}), 201)
    assert sorted(p for _, p in vm1["vcpu_pins"]) == sorted(p for _, p in vm2["vcpu_pins"])
    assert "shared by up to 2 guests" in vm2["rt_waiver"]
    assert _node(cloud)["rt_used"] == 4
    r = alice.post("/v1/instances", json={"name": "vm3", "flavor": "rt2"})
    assert r.status_code == 409, r.text

    # guests share pCPUs: the share cannot go down, nor the waiver go away
    r = cloud.admin.patch("/v1/hosts/lab", json={"pcpu_share": 1})
    assert r.status_code == 409
    assert "share a pCPU" in r.json()["detail"]
    r = cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": None})
    assert r.status_code == 409
    assert expect(cloud.admin.get("/v1/hosts/lab"), 200)["rt_waiver"] == "lab"

    # the second guest goes: its slot is free again, and the share may go down
    expect(alice.delete(f"/v1/instances/{vm2['id']}"), 204)
    body = {"state": "deleted"}
    expect(agent.post(f"/v1/agent/instances/{vm2['id']}/state", json=body), 200)
    out = expect(cloud.admin.patch("/v1/hosts/lab", json={"pcpu_share": 1}), 200)
    assert (out["pcpu_share"], out["nodes"][0]["rt_total"], out["nodes"][0]["rt_used"]) == (1, 2, 2)


def test_unshared_pcpus_are_used_first(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.host("lab", verdict="not-ready", nodes=1, cores_per_node=5)  # 4 RT pCPUs
    cloud.flavor("rt2", 2)
    expect(cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": "lab", "pcpu_share": 3}), 200)
    vms = [
        expect(alice.post("/v1/instances", json={"name": f"vm{i}", "flavor": "rt2"}), 201)
        for i in range(3)
    ]
    first, second = ({p for _, p in vm["vcpu_pins"]} for vm in vms[:2])
    assert not first & second  # two guests, four pCPUs: nothing shared yet
    third = {p for _, p in vms[2]["vcpu_pins"]}
    assert third <= first | second


def test_registering_again_keeps_the_share(cloud: Cloud) -> None:
    _, agent = _lab(cloud)
    expect(cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": "lab", "pcpu_share": 2}), 200)
    fake = fake_host(nodes=1, cores_per_node=3)
    report = {
        "topology": fake.topology.model_dump(),
        "plan": fake.plan.model_dump(mode="json"),
        "doctor": {"verdict": "not-ready", "failed": ["rt_throttling"]},
        "dataplane_state": "ready",
        "physnets": [],
    }
    out = expect(agent.put("/v1/agent/host", json=report), 200)
    assert (out["pcpu_share"], out["nodes"][0]["rt_total"]) == (2, 4)


def test_a_guest_needing_more_distinct_pcpus_than_shared_ones_is_told_why(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.host("lab", verdict="not-ready", nodes=1, cores_per_node=2)  # 1 RT pCPU
    cloud.flavor("rt2", 2)  # two dedicated vCPUs: two distinct pCPUs
    expect(cloud.admin.patch("/v1/hosts/lab", json={"rt_waiver": "lab", "pcpu_share": 2}), 200)
    r = alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"})
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert "too few distinct pCPUs with a free slot" in detail
    assert "lab:" in detail and "fewer RT vCPUs" in detail
    assert "concurrent requests" not in detail
