"""Flavors (Nova extra specs or rtkvm spec) and unmanaged networks."""

from __future__ import annotations

from rtkvm.api.testing import Cloud, expect


def test_flavor_from_nova_extra_specs(cloud: Cloud) -> None:
    flavor = cloud.flavor("rt4", 4, ram=2048, **{"hw__emulator_threads_policy": "isolate"})
    assert flavor["rt_vcpus"] == "1-3"
    assert flavor["rt_cores"] == 5
    assert flavor["page_size"] == "2M"
    assert flavor["extra_specs"]["hw:cpu_realtime_mask"] == "^0"
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    assert [f["name"] for f in expect(alice.get("/v1/flavors"), 200)] == ["rt4"]
    assert expect(alice.get("/v1/flavors/rt4"), 200)["vcpus"] == 4
    assert alice.get("/v1/flavors/rt8").status_code == 404
    dup = {"vcpus": 1, "ram": 64, "extra_specs": {"hw:cpu_policy": "dedicated"}}
    assert cloud.admin.post("/v1/flavors", json={**dup, "name": "rt4"}).status_code == 409


def test_flavor_errors_speak_nova(cloud: Cloud) -> None:
    bad = {
        "name": "x",
        "vcpus": 4,
        "ram": 1024,
        "extra_specs": {"hw:cpu_realtime": "yes", "hw:cpu_policy": "shared"},
    }
    r = cloud.admin.post("/v1/flavors", json=bad)
    assert r.status_code == 400
    assert "Cannot set realtime policy in a non dedicated cpu pinning policy" in r.json()["detail"]
    bad["extra_specs"] = {"hw:cpu_policy": "dedicated", "hw:cpu_realtime": "yes"}
    r = cloud.admin.post("/v1/flavors", json=bad)
    assert "requires either one or more non-realtime CPU(s)" in r.json()["detail"]
    bad["extra_specs"] = {"hw:cpu_policy": "dedicated", "quota:cpu_shares": "10"}
    r = cloud.admin.post("/v1/flavors", json=bad)
    assert r.status_code == 422
    assert "quota:cpu_shares" in r.json()["detail"]
    plain = expect(cloud.admin.post("/v1/flavors", json={"name": "x", "vcpus": 2, "ram": 512}), 201)
    assert (plain["spec"]["cpu_policy"], plain["spec"]["realtime"]) == ("shared", False)  # Nova's
    mixed = {"name": "m", "vcpus": 2, "ram": 512, "extra_specs": {"hw:cpu_policy": "mixed"}}
    r = cloud.admin.post("/v1/flavors", json=mixed)
    assert r.status_code == 422 and "without hw:cpu_realtime=yes" in r.json()["detail"]
    r = cloud.admin.post("/v1/flavors", json={"name": "x"})
    assert "vcpus and ram" in r.json()["detail"]


def test_flavor_from_rtkvm_spec_and_idempotent_delete(cloud: Cloud) -> None:
    spec = {"vcpus": 2, "memory_mib": 1024, "realtime_mask": "1", "priority": 60}
    flavor = expect(cloud.admin.post("/v1/flavors", json={"name": "own", "spec": spec}), 201)
    assert flavor["spec"]["priority"] == 60
    assert flavor["rt_vcpus"] == "1"
    r = cloud.admin.post("/v1/flavors", json={"name": "y", "spec": {**spec, "priority": 0}})
    assert r.status_code == 400
    assert "out of range" in r.json()["detail"]
    expect(cloud.admin.delete("/v1/flavors/own"), 204)
    expect(cloud.admin.delete("/v1/flavors/own"), 204)


def test_networks_keep_segments_apart(cloud: Cloud) -> None:
    cloud.project("p1")
    cloud.network("blue", "phys1", vlan=100, shared=True)
    r = cloud.admin.post("/v1/networks", json={"name": "blue2", "physnet": "phys1", "vlan": 100})
    assert r.status_code == 400
    assert "one L2 segment" in r.json()["detail"]
    r = cloud.admin.post("/v1/networks", json={"name": "flat", "physnet": "phys1"})
    assert r.status_code == 400
    assert "untagged" in r.json()["detail"]
    r = cloud.admin.post("/v1/networks", json={"name": "v", "physnet": "phys2", "vlan": 4095})
    assert r.status_code == 400
    assert "1..4094" in r.json()["detail"]
    body = {"name": "p", "physnet": "phys2", "shared": True, "project": "p1"}
    assert cloud.admin.post("/v1/networks", json=body).status_code == 422
    private = cloud.network("mine", "phys1", vlan=101, project="p1")
    assert (private["project"], private["shared"]) == ("p1", False)
    expect(cloud.admin.delete("/v1/networks/mine"), 204)
    expect(cloud.admin.delete("/v1/networks/mine"), 204)


def test_a_network_in_use_cannot_be_deleted(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("h1", physnets=("phys1",), nodes=1, cores_per_node=4)
    cloud.flavor("rt2", 2)
    cloud.network("blue", "phys1", shared=True)
    vm = expect(
        alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2", "networks": ["blue"]}), 201
    )
    assert cloud.admin.delete("/v1/networks/blue").status_code == 409
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "deleted"}), 200)
    expect(cloud.admin.delete("/v1/networks/blue"), 204)
