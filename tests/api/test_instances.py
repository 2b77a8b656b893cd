"""Instances: scheduling, pinning consistent with rtkvm.domain.placement, errors, delete."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI

from rtkvm.api.testing import Cloud, expect
from rtkvm.cpuset import CpuSet
from rtkvm.db.models import Instance
from rtkvm.domain.placement import place
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.scheduler.fakehosts import fake_host


def _setup(cloud: Cloud) -> Any:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.network("blue", "blue", shared=True)
    return alice


def test_create_pins_like_the_pure_placement(cloud: Cloud) -> None:
    alice = _setup(cloud)
    cloud.host("h1", physnets=("blue",), smt=True)
    flavor = cloud.flavor("rt4", 4)
    vm = expect(
        alice.post("/v1/instances", json={"name": "vm", "flavor": "rt4", "networks": ["blue"]}),
        201,
    )
    assert vm["state"] == "building"
    assert vm["host"] == "h1"
    assert vm["networks"] == [{"name": "blue", "physnet": "blue", "vlan": None, "address": None}]
    fake = fake_host(smt=True)
    expected = place(
        RtGuestSpec.model_validate(flavor["spec"]), fake.plan, fake.topology.to_topology()
    )
    assert [tuple(p) for p in vm["vcpu_pins"]] == list(expected.vcpu_pins)
    assert vm["emulator_cpus"] == str(expected.emulator_cpus)
    assert vm["emulator_cpus"] == str(CpuSet([vm["vcpu_pins"][0][1]]))  # mask ^0: vCPU 0's pCPU
    assert vm["rt_cores"] == 4
    node = expect(cloud.admin.get("/v1/hosts/h1"), 200)["nodes"][vm["cell_nodes"][0]]
    assert node["rt_used"] == 4
    assert node["hugepages_2m_used"] == 512


def test_isolate_claims_an_extra_pcpu_for_the_emulator(cloud: Cloud) -> None:
    alice = _setup(cloud)
    cloud.host("h1", physnets=("blue",), nodes=1, cores_per_node=6)
    cloud.flavor(
        "iso", 4, **{"hw__emulator_threads_policy": "isolate", "hw__cpu_realtime_mask": "0-3"}
    )
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "iso"}), 201)
    vcpu_pcpus = {p for _, p in vm["vcpu_pins"]}
    emulator = CpuSet.parse(vm["emulator_cpus"])
    assert len(emulator) == 1
    assert not emulator & CpuSet(vcpu_pcpus)
    assert vm["rt_cores"] == 5
    # 5 RT pCPUs on this host: a second one does not fit, and the error says why
    r = alice.post("/v1/instances", json={"name": "vm2", "flavor": "iso"})
    assert r.status_code == 409
    assert "none with 5 free RT pCPUs on one NUMA node" in r.json()["detail"]


def test_no_fit_explains_per_host_class_and_leaves_an_errored_instance(cloud: Cloud) -> None:
    alice = _setup(cloud)
    for i in range(3):
        cloud.host(f"b{i}", physnets=("blue",), nodes=2, cores_per_node=4)
    cloud.host("r0", physnets=("red",))
    cloud.host("sick", physnets=("blue",), verdict="not-ready")
    cloud.flavor("rt4", 4)
    r = alice.post("/v1/instances", json={"name": "big", "flavor": "rt4", "networks": ["blue"]})
    assert r.status_code == 409
    detail = r.json()["detail"]
    assert "3 hosts wired to blue, none with 4 free RT pCPUs on one NUMA node" in detail
    assert "1 host not wired to blue" in detail
    assert "1 host not RT-ready" in detail
    [vm] = expect(alice.get("/v1/instances"), 200)
    assert vm["state"] == "error"
    assert vm["fault"] == detail
    assert vm["host"] is None
    assert expect(cloud.admin.get("/v1/projects/p1"), 200)["rt_cores_used"] == 0
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)  # holds nothing: gone at once
    assert alice.get(f"/v1/instances/{vm['id']}").status_code == 404


def test_delete_is_idempotent_and_the_agent_frees_the_host(cloud: Cloud) -> None:
    alice = _setup(cloud)
    agent = cloud.host("h1", nodes=1, cores_per_node=5)
    cloud.flavor("rt4", 4)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt4"}), 201)
    assert alice.post("/v1/instances", json={"name": "vm2", "flavor": "rt4"}).status_code == 409
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["state"] == "deleting"
    [work] = expect(agent.get("/v1/agent/instances"), 200)
    assert work["state"] == "deleting"
    # still held until the agent says it is gone
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["nodes"][0]["rt_used"] == 4
    done = expect(
        agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "deleted"}), 200
    )
    assert done["state"] == "deleted"
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["nodes"][0]["rt_used"] == 0
    assert expect(cloud.admin.get("/v1/projects/p1"), 200)["instances_used"] == 0
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    expect(alice.delete("/v1/instances/00000000-0000-0000-0000-000000000000"), 204)
    again = expect(alice.post("/v1/instances", json={"name": "vm3", "flavor": "rt4"}), 201)
    assert {p for _, p in again["vcpu_pins"]} == {p for _, p in vm["vcpu_pins"]}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "x", "flavor": "nope"}, 404, "flavor 'nope' not found"),
        ({"name": "x", "flavor": "rt2", "networks": ["nope"]}, 404, "network 'nope'"),
        ({"name": "x", "flavor": "rt2", "networks": ["blue", "blue"]}, 422, "listed twice"),
        ({"name": "", "flavor": "rt2"}, 422, "name"),
        ({"flavor": "rt2"}, 422, "name: Field required"),
        ({"name": "x", "flavor": "rt2", "colour": "red"}, 422, "colour"),
        ({"name": "x", "flavor": 12}, 422, "flavor"),
        ({"name": "x", "flavor": "rt2", "project": "p2"}, 403, "only an admin"),
        ([1, 2], 422, "bad request"),
    ],
)
def test_bad_creates_say_what_to_change(cloud: Cloud, body: Any, status: int, words: str) -> None:
    alice = _setup(cloud)
    cloud.project("p2")
    cloud.flavor("rt2", 2)
    r = alice.post("/v1/instances", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert expect(alice.get("/v1/instances"), 200) == []


def test_garbage_never_gives_a_500(cloud: Cloud) -> None:
    alice = _setup(cloud)
    for path in ("/v1/instances", "/v1/flavors", "/v1/networks", "/v1/projects", "/v1/hosts"):
        for content in (b"{", b"null", b'{"name": null}', b"\xff\xfe"):
            for client in (alice, cloud.admin):
                r = client.post(path, content=content, headers={"Content-Type": "application/json"})
                assert 400 <= r.status_code < 500, (path, content, r.text)
    assert cloud.admin.get("/v1/usage/p1?since=10&until=5").status_code == 422
    assert alice.get("/v1/instances/%00").status_code == 404


def test_pack_fills_one_host_and_spread_balances(tmp_path: Any, clock: Any) -> None:
    from rtkvm.api.app import create_app
    from rtkvm.api.testing import ADMIN_TOKEN
    from rtkvm.settings import Settings

    hosts_used = {}
    for weigher in ("pack", "spread"):
        url = f"sqlite:///{tmp_path}/{weigher}.db"
        settings = Settings(database_url=url, bootstrap_admin_token=ADMIN_TOKEN, weigher=weigher)
        app = create_app(settings, clock=clock)
        cloud = Cloud(app)
        try:
            alice = _setup(cloud)
            for i in range(3):
                cloud.host(f"h{i}", nodes=1, cores_per_node=8)
            cloud.flavor("rt2", 2)
            hosts_used[weigher] = [
                expect(alice.post("/v1/instances", json={"name": f"v{i}", "flavor": "rt2"}), 201)[
                    "host"
                ]
                for i in range(3)
            ]
        finally:
            cloud.close()
            app.state.services.db.dispose()
    assert len(set(hosts_used["pack"])) == 1, hosts_used
    assert len(set(hosts_used["spread"])) == 3, hosts_used


def test_mixed_flavor_claims_only_its_rt_vcpus(cloud: Cloud) -> None:
    alice = _setup(cloud)
    cloud.host("h1", nodes=1, cores_per_node=4)  # housekeeping CPU 0, RT pCPUs 1-3
    body = {
        "name": "mix",
        "vcpus": 4,
        "ram": 1024,
        "extra_specs": {
            "hw:cpu_policy": "mixed",
            "hw:cpu_realtime": "yes",
            "hw:cpu_realtime_mask": "2-3",
        },
    }
    flavor = expect(cloud.admin.post("/v1/flavors", json=body), 201)
    assert flavor["rt_cores"] == 2
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "mix"}), 201)
    assert [v for v, _ in vm["vcpu_pins"]] == [2, 3]
    assert vm["rt_cores"] == 2
    assert vm["emulator_cpus"] == "0"  # floats with the non-RT vCPUs on housekeeping
    assert expect(cloud.admin.get("/v1/hosts/h1"), 200)["nodes"][0]["rt_used"] == 2
    r = alice.post("/v1/instances", json={"name": "vm2", "flavor": "mix"})
    assert r.status_code == 409  # one RT pCPU left, two needed
    assert "none with 2 free RT pCPUs" in r.json()["detail"]
    plain = {**body, "name": "m2", "extra_specs": {"hw:cpu_policy": "mixed"}}
    r = cloud.admin.post("/v1/flavors", json=plain)
    assert r.status_code == 422
    assert "hw:cpu_realtime=yes" in r.json()["detail"]


def test_a_mixed_placement_stored_without_floating_cpus_gets_them_from_the_host_plan(
    cloud: Cloud, app: FastAPI
) -> None:
    """Rows written before the placement carried its floating CPUs: the API adds them
    by the placement module's rule, so the agent never has to compute them."""
    alice = _setup(cloud)
    agent = cloud.host("h1", nodes=1, cores_per_node=4)  # housekeeping CPU 0
    specs = {"hw:cpu_policy": "mixed", "hw:cpu_realtime": "yes", "hw:cpu_realtime_mask": "2-3"}
    body = {"name": "mix", "vcpus": 4, "ram": 1024, "extra_specs": specs}
    expect(cloud.admin.post("/v1/flavors", json=body), 201)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "mix"}), 201)
    [work] = expect(agent.get("/v1/agent/instances"), 200)
    assert (work["placement"]["floating_vcpus"], work["placement"]["floating_cpus"]) == ("0-1", "0")
    with app.state.services.db.write() as session:
        row = session.get(Instance, vm["id"])
        assert row is not None
        old = json.loads(row.placement)
        del old["floating_vcpus"], old["floating_cpus"]
        row.placement = json.dumps(old)
    [work] = expect(agent.get("/v1/agent/instances"), 200)
    assert (work["placement"]["floating_vcpus"], work["placement"]["floating_cpus"]) == ("0-1", "0")


def test_an_instance_id_in_capitals_names_the_same_instance(cloud: Cloud) -> None:
    alice = _setup(cloud)
    cloud.host("h1", nodes=1, cores_per_node=4)
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    assert alice.get(f"/v1/instances/{vm['id'].upper()}").json()["id"] == vm["id"]
    assert alice.delete(f"/v1/instances/{vm['id'].upper()}").status_code == 204
    assert alice.get(f"/v1/instances/{vm['id']}").json()["state"] == "deleting"


def test_lists_come_in_pages_and_refused_creates_do_not_pile_up(cloud: Cloud, clock: Any) -> None:
    alice = _setup(cloud)
    cloud.host("h1", nodes=1, cores_per_node=8)  # 7 RT pCPUs: three rt2 guests fit
    cloud.flavor("rt2", 2)
    made = [
        expect(alice.post("/v1/instances", json={"name": f"vm{i}", "flavor": "rt2"}), 201)["id"]
        for i in range(3)
    ]
    first = expect(alice.get("/v1/instances", params={"limit": 2}), 200)
    rest = expect(alice.get("/v1/instances", params={"limit": 2, "marker": first[-1]["id"]}), 200)
    pages = [i["id"] for i in first + rest]
    assert (len(first), sorted(pages)) == (2, sorted(made))  # each once, in two pages
    bad = alice.get("/v1/instances", params={"marker": "not-an-id"})
    assert bad.status_code == 400 and "give the last id you saw" in bad.json()["detail"]
    for _ in range(3):  # no host can take a fourth: refused, listed as error for a day
        assert alice.post("/v1/instances", json={"name": "big", "flavor": "rt2"}).status_code == 409
    listed = expect(alice.get("/v1/instances"), 200)
    assert [i["state"] for i in listed].count("error") == 3
    clock.advance(86401)
    assert alice.post("/v1/instances", json={"name": "big", "flavor": "rt2"}).status_code == 409
    listed = expect(alice.get("/v1/instances"), 200)
    assert [i["state"] for i in listed].count("error") == 1  # the one just refused
    assert len(listed) == 4
