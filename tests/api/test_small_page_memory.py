"""Guests with 4k pages take RAM from their host node, beside the hugepage pools and the
host's reserve: a flavor larger than what is left is refused and says why; delete gives
it back; a re-registration cannot shrink RAM under the guests that hold it."""

from __future__ import annotations

from sqlalchemy import select, update

from rtkvm.api.testing import Cloud, expect
from rtkvm.db.engine import Database
from rtkvm.db.models import HostNode
from rtkvm.scheduler.fakehosts import fake_host
from rtkvm.scheduler.invariants import violations
from rtkvm.settings import Settings
from rtkvm.wire.agent_client import AgentClient
from rtkvm.wire.node import HostReport

GIB = 1024
"""MiB per GiB."""


def _small(cloud: Cloud, name: str, vcpus: int, ram_mib: int) -> None:
    cloud.flavor(name, vcpus, ram_mib, **{"hw__mem_page_size": "small"})


def _node(cloud: Cloud, host: str, node: int) -> dict[str, int]:
    return expect(cloud.admin.get(f"/v1/hosts/{host}"), 200)["nodes"][node]  # type: ignore[no-any-return]


def test_ram_for_4k_pages_is_what_the_pools_and_the_reserve_leave(cloud: Cloud) -> None:
    # 16 GiB on each node; 4096 2M pages = 8 GiB in the pool; 1 GiB kept for the host
    cloud.host("h1", nodes=2, memory_gib=16, hugepages_2m=4096)
    node = _node(cloud, "h1", 0)
    reserve = Settings().host_reserved_memory_mib
    assert node["memory_4k_mib_total"] == 16 * GIB - 8 * GIB - reserve
    assert node["memory_4k_mib_used"] == 0


def test_a_4k_flavor_bigger_than_any_node_is_refused_with_the_reason(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.host("h1", nodes=2, memory_gib=16, hugepages_2m=4096)
    _small(cloud, "huge4k", 2, 10 * GIB)
    r = alice.post("/v1/instances", json={"name": "vm", "flavor": "huge4k"})
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert f"none with {10 * GIB} MiB of RAM free for 4k pages on such a node" in detail
    for n in (0, 1):
        assert _node(cloud, "h1", n)["memory_4k_mib_used"] == 0


def test_4k_guests_fill_a_node_s_ram_then_go_elsewhere_and_give_it_back(
    cloud: Cloud, app: object
) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    h1 = cloud.host("h1", nodes=1, cores_per_node=16, memory_gib=16, hugepages_2m=4096)
    assert _node(cloud, "h1", 0)["memory_4k_mib_total"] == 7 * GIB  # room for two 3 GiB guests
    _small(cloud, "s3g", 2, 3 * GIB)
    first = expect(alice.post("/v1/instances", json={"name": "a", "flavor": "s3g"}), 201)
    expect(alice.post("/v1/instances", json={"name": "b", "flavor": "s3g"}), 201)
    assert _node(cloud, "h1", 0)["memory_4k_mib_used"] == 6 * GIB
    r = alice.post("/v1/instances", json={"name": "c", "flavor": "s3g"})
    assert r.status_code == 409, r.text  # pCPUs are free; the RAM is not
    assert _node(cloud, "h1", 0)["rt_used"] == 4
    cloud.host("h2", nodes=1, cores_per_node=16, memory_gib=16, hugepages_2m=4096)
    again = expect(alice.post("/v1/instances", json={"name": "c2", "flavor": "s3g"}), 201)
    assert again["host"] == "h2"
    expect(alice.delete(f"/v1/instances/{first['id']}"), 204)
    expect(h1.post(f"/v1/agent/instances/{first['id']}/state", json={"state": "deleted"}), 200)
    assert _node(cloud, "h1", 0)["memory_4k_mib_used"] == 3 * GIB
    db: Database = app.state.services.db  # type: ignore[attr-defined]
    with db.read() as s:
        assert violations(s) == []


def test_re_registering_cannot_take_ram_that_4k_guests_hold(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("h1", nodes=1, cores_per_node=8, memory_gib=16, hugepages_2m=0)
    _small(cloud, "s8g", 2, 8 * GIB)
    expect(alice.post("/v1/instances", json={"name": "a", "flavor": "s8g"}), 201)
    # the operator grows the 2M pool to 6 GiB: 16 - 6 - 1 = 9 GiB left, the guest keeps 8
    grown = fake_host(nodes=1, cores_per_node=8, memory_gib=16, hugepages_2m=3072)
    report = {
        "topology": grown.topology.model_dump(),
        "plan": grown.plan.model_dump(mode="json"),
        "doctor": {"verdict": "ready", "failed": []},
        "dataplane_state": "ready",
        "physnets": [],
    }
    AgentClient(http=agent).register(HostReport.model_validate(report))
    # to 8 GiB: only 7 would be left for a guest that holds 8
    shrunk = fake_host(nodes=1, cores_per_node=8, memory_gib=16, hugepages_2m=4096)
    r = agent.put(
        "/v1/agent/host",
        json={**report, "topology": shrunk.topology.model_dump()},
    )
    assert r.status_code == 400, r.text
    assert "guests with 4k pages use 8192 MiB of RAM" in r.json()["detail"]
    assert _node(cloud, "h1", 0)["memory_4k_mib_total"] == 9 * GIB


def test_a_node_whose_ram_is_unknown_takes_no_4k_guest(cloud: Cloud, app: object) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.host("h1", nodes=1, memory_gib=0)
    _small(cloud, "s1g", 2, GIB)
    cloud.flavor("hp1g", 2, GIB)  # hugepage guests do not need the node's RAM figure
    r = alice.post("/v1/instances", json={"name": "a", "flavor": "s1g"})
    assert r.status_code == 409, r.text
    expect(alice.post("/v1/instances", json={"name": "b", "flavor": "hp1g"}), 201)
    db: Database = app.state.services.db  # type: ignore[attr-defined]
    with db.write() as s:
        assert s.scalars(select(HostNode.mem_total)).all() == [0]
        s.execute(update(HostNode).values(mem_used=5))  # a counter gone wrong is caught
    with db.read() as s:
        found = violations(s)
    assert any("mem_used is 5, its instances hold 0" in v for v in found), found
    assert any("mem_used 5 is outside 0..0" in v for v in found), found
