"""50 concurrent creates on a nearly full cluster: no pCPU twice, no quota overrun.

Requests go through the real ASGI stack (httpx.ASGITransport); the sync
endpoints run in the server's thread pool, so the claims really race in
the database, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
from sqlalchemy import select

from rtkvm.api.testing import ADMIN_TOKEN, Cloud, expect
from rtkvm.db.models import CpuClaim, Host, HostNode, Instance, Project

REQUESTS = 50


async def _burst(cloud: Cloud, tokens: list[str]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=cloud.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rtkvm.test") as client:
        calls = [
            client.post(
                "/v1/instances",
                json={"name": f"vm{i}", "flavor": ("rt2", "rt3")[i % 2], "networks": ["blue"]},
                headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
            )
            for i in range(REQUESTS)
        ]
        return await asyncio.gather(*calls)


def test_concurrent_creates_never_double_book_or_overrun(cloud: Cloud) -> None:
    cloud.project("p1", quota_rt_cores=7)
    cloud.project("p2", quota_instances=2)
    tokens = [ADMIN_TOKEN]  # the admin project has no quota: capacity bites too
    for user, project in (("alice", "p1"), ("bob", "p2")):
        expect(cloud.admin.post("/v1/users", json={"name": user, "project": project}), 201)
        tokens.append(expect(cloud.admin.post("/v1/tokens", json={"user": user}), 201)["secret"])
    cloud.network("blue", "blue", shared=True)
    # room for 16 guests; p1 and p2 hit their quotas, the admin project fills the rest
    for i in range(4):  # 3 RT pCPUs per node: one guest per node
        cloud.host(f"small{i}", physnets=("blue",), nodes=2, cores_per_node=4)
    for i in range(2):  # 7 RT pCPUs per node, but hugepages for only two guests
        cloud.host(f"big{i}", physnets=("blue",), nodes=2, cores_per_node=8, hugepages_2m=1100)
    cloud.host("unwired", nodes=2, cores_per_node=8)
    cloud.flavor("rt2", 2)
    cloud.flavor(
        "rt3", 2, **{"hw__emulator_threads_policy": "isolate", "hw__cpu_realtime_mask": "0-1"}
    )

    responses = asyncio.run(_burst(cloud, tokens))

    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {201, 403, 409}, [r.text for r in responses if r.status_code >= 500]
    assert 8 <= codes[201] <= 16
    assert codes[403] > 0
    assert codes[409] > 0
    for r in responses:
        if r.status_code != 201:
            assert r.json()["detail"]

    db = cloud.app.state.services.db
    with db.read() as s:
        placed = list(s.scalars(select(Instance).where(Instance.state == "building")))
        errored = list(s.scalars(select(Instance).where(Instance.state == "error")))
        claims = list(s.scalars(select(CpuClaim)))
        nodes = list(s.scalars(select(HostNode)))
        hosts = {h.id: h.name for h in s.scalars(select(Host))}
        projects = {p.name: p for p in s.scalars(select(Project))}
        p1 = projects["p1"].id
        p2 = projects["p2"].id
    assert len(placed) == codes[201]
    assert len(errored) == REQUESTS - codes[201]
    assert all(i.rt_cores == 0 and i.host_id is None for i in errored)

    # pCPUs: every placement's pCPUs are its claim rows, and no pCPU is in two placements
    seen: dict[tuple[int, int], str] = {}
    for inst in placed:
        data = json.loads(inst.placement)
        assert inst.host_id is not None
        mine = {p for _, p in data["vcpu_pins"]}
        if data["isolated_emulator_cpu"] is not None:
            mine.add(data["isolated_emulator_cpu"])
        assert len(mine) == inst.rt_cores
        for pcpu in mine:
            key = (inst.host_id, pcpu)
            assert key not in seen, f"pCPU {pcpu} of {hosts[inst.host_id]} booked twice"
            seen[key] = inst.id
    assert {(c.host_id, c.pcpu): c.instance_id for c in claims} == seen
    assert "unwired" not in {hosts[i.host_id] for i in placed if i.host_id is not None}

    # counters agree with the claims; hugepages never exceed what hosts have
    per_node = Counter((c.host_id, c.node) for c in claims)
    pages: Counter[tuple[int, int]] = Counter()
    for inst in placed:
        for node, count in json.loads(inst.placement)["hugepages"].items():
            assert inst.host_id is not None
            pages[(inst.host_id, int(node))] += count
    for node in nodes:
        assert node.rt_used == per_node[(node.host_id, node.node)] <= node.rt_total
        assert node.hp2m_used == pages[(node.host_id, node.node)] <= node.hp2m_total

    # quotas held, and the project counters are exact
    p1_cores = sum(i.rt_cores for i in placed if i.project_id == p1)
    p2_count = sum(1 for i in placed if i.project_id == p2)
    assert p1_cores <= 7
    assert p2_count <= 2
    assert projects["p1"].rt_cores_used == p1_cores
    assert projects["p2"].instances_used == p2_count
