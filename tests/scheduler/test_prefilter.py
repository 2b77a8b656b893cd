"""The SQL prefilter never drops a host the pure filters accept, and orders like the weigher
(so the candidates within its first k rows are the best candidates)."""

from __future__ import annotations

import json
import random

from sqlalchemy import insert

from rtkvm.db.engine import Database
from rtkvm.db.models import Host, HostNode
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.scheduler.claim import refresh_capacity
from rtkvm.scheduler.filters import Context, candidates, rank
from rtkvm.scheduler.loader import load_hosts, load_prefiltered
from rtkvm.scheduler.snapshot import Request

NOW = 50_000.0


def _seed(db: Database, n: int, rng: random.Random) -> None:
    hosts, nodes = [], []
    for i in range(n):
        hosts.append(
            {
                "id": i + 1,
                "name": f"h{i:04d}",
                "enrolled_at": 0.0,
                "registered_at": 0.0,
                "heartbeat_at": rng.choice([NOW - 1, NOW - 59, NOW - 61, None]),
                "doctor_verdict": rng.choice(["ready", "ready", "not-ready", "unknown"]),
                "rt_waiver": rng.choice([None, None, None, "lab"]),
                "doctor_failed": "[]",
                "dataplane_state": rng.choice(["ready", "ready", "unknown"]),
                "physnets": json.dumps(
                    sorted(rng.sample(["blue", "red", "bluex"], rng.randint(0, 3)))
                ),
            }
        )
        for node in range(rng.randint(1, 3)):
            total = rng.randint(0, 8)
            nodes.append(
                {
                    "host_id": i + 1,
                    "node": node,
                    "rt_pcpus": "",
                    "rt_total": total,
                    "rt_used": rng.randint(0, total),
                    "hp2m_total": 1024,
                    "hp2m_used": rng.choice([0, 512, 700, 1024]),
                    "hp1g_total": 4,
                    "hp1g_used": rng.randint(0, 4),
                    "mem_total": 4096,
                    "mem_used": rng.choice([0, 1024, 4000, 4096]),
                }
            )
    with db.write() as s:
        s.execute(insert(Host), hosts)
        s.execute(insert(HostNode), nodes)
        refresh_capacity(s, None)


def test_prefilter_is_a_superset_in_weigher_order(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    _seed(db, 400, random.Random(3))
    ctx = Context(now=NOW, agent_timeout_s=60)
    specs = [
        RtGuestSpec(vcpus=4, memory_mib=1024, realtime_mask="^0"),
        RtGuestSpec(vcpus=2, memory_mib=2048, realtime_mask="1", page_size="1G"),
        RtGuestSpec(vcpus=3, memory_mib=64, realtime_mask="^0", page_size="4k"),
        RtGuestSpec(vcpus=2, memory_mib=3000, realtime_mask="^0", page_size="4k"),
        RtGuestSpec(vcpus=2, memory_mib=1024, emulator_threads_policy="isolate"),
    ]
    networks: list[tuple[tuple[str, str], ...]] = [
        (),
        (("b", "blue"),),
        (("b", "blue"), ("r", "red")),
    ]
    with db.read() as s:
        every = load_hosts(s)
    checked = 0
    for spec in specs:
        for nets in networks:
            req = Request.from_spec(spec, nets)
            for weigher in ("pack", "spread"):
                truth = rank(candidates(every, req, ctx), req, weigher)
                with db.read() as s:
                    few = load_prefiltered(
                        s,
                        physnets=req.physnets,
                        need_dataplane=bool(req.networks),
                        heartbeat_after=NOW - 60,
                        min_node_free=max(req.cell_pcpus),
                        page_kib=req.page_kib,
                        pages=req.pages_per_cell,
                        mib=req.mib_per_cell,
                        most_free_first=weigher == "spread",
                        limit=10_000,
                    )
                got = rank(candidates(few, req, ctx), req, weigher)
                assert [h.name for h in got] == [h.name for h in truth]
                checked += len(truth)
                with db.read() as s:
                    top = load_prefiltered(
                        s,
                        physnets=req.physnets,
                        need_dataplane=bool(req.networks),
                        heartbeat_after=NOW - 60,
                        min_node_free=max(req.cell_pcpus),
                        page_kib=req.page_kib,
                        pages=req.pages_per_cell,
                        mib=req.mib_per_cell,
                        most_free_first=weigher == "spread",
                        limit=5,
                    )
                # the candidates among the SQL's best five are the best candidates, in order
                best = [h.name for h in rank(candidates(top, req, ctx), req, weigher)]
                assert best == [h.name for h in truth[: len(best)]]
    assert checked > 100  # the cases were not vacuous
    db.dispose()
