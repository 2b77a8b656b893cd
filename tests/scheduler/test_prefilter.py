"""The scheduler's SQL agrees with its pure filters: the prefilter never drops a host they
accept and orders like the weigher (the candidates within its first k rows are the best
candidates), and the refusal's counts classify every host as the filters do."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import replace

from sqlalchemy import insert

from rtkvm.db.engine import Database
from rtkvm.db.models import Host, HostNode
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.scheduler import queries
from rtkvm.scheduler.claim import refresh_capacity
from rtkvm.scheduler.filters import FILTERS, Context, candidates, first_failure, rank
from rtkvm.scheduler.loader import load_hosts
from rtkvm.scheduler.snapshot import HostSnapshot, Request

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
                "qualified_at": rng.choice([None, NOW - 100, NOW - 5000]),
                "engine": "openstack" if rng.random() < 0.05 else "rtkvm",
                "doctor_failed": "[]",
                "dataplane_state": rng.choice(["ready", "ready", "unknown"]),
                "physnets": json.dumps(
                    sorted(rng.sample(["blue", "red", "bluex"], rng.randint(0, 3)))
                ),
                "disk_gb_total": rng.choice([None, 10, 100, 1000]),
            }
        )
        hosts[-1]["disk_gb_used"] = rng.randint(0, hosts[-1]["disk_gb_total"] or 0)
        if rng.random() < 0.05:  # enrolled, never registered: no nodes
            hosts[-1]["registered_at"] = None
            continue
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


SPECS = [
    RtGuestSpec(vcpus=4, memory_mib=1024, realtime_mask="^0"),
    RtGuestSpec(vcpus=2, memory_mib=2048, realtime_mask="1", page_size="1G"),
    RtGuestSpec(vcpus=3, memory_mib=64, realtime_mask="^0", page_size="4k"),
    RtGuestSpec(vcpus=2, memory_mib=3000, realtime_mask="^0", page_size="4k"),
    RtGuestSpec(vcpus=2, memory_mib=1024, emulator_threads_policy="isolate"),
    RtGuestSpec(vcpus=4, memory_mib=1024, realtime_mask="^0", numa_nodes=2),
    RtGuestSpec(vcpus=6, memory_mib=1536, emulator_threads_policy="isolate", numa_nodes=3),
    RtGuestSpec(vcpus=8, memory_mib=2048, realtime_mask="^0", numa_nodes=2, page_size="4k"),
]
ASKS: list[tuple[str | None, float | None, int]] = [
    (None, None, 0),
    ("h0123", None, 0),
    (None, NOW - 1000, 0),
    (None, None, 20),
    (None, NOW - 1000, 80),
]
"""(an admin's chosen host, qualified since, disk GiB): none, a target, qualification
required, a disk, both."""
NETWORKS: list[tuple[tuple[str, str], ...]] = [
    (),
    (("b", "blue"),),
    (("b", "blue"), ("r", "red")),
]


def test_prefilter_is_a_superset_in_weigher_order(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    _seed(db, 400, random.Random(3))
    ctx = Context(now=NOW, agent_timeout_s=60)
    with db.read() as s:
        every = load_hosts(s)
    checked = 0
    for spec in SPECS:
        for nets in NETWORKS:
            for target, since, disk in ASKS:
                req = replace(
                    Request.from_spec(spec, nets),
                    target_host=target,
                    qualified_since=since,
                    disk_gb=disk,
                )
                _check_prefilter(db, every, req, ctx)
                checked += len(candidates(every, req, ctx))
    assert checked > 100  # the cases were not vacuous
    db.dispose()


def _check_prefilter(db: Database, every: list[HostSnapshot], req: Request, ctx: Context) -> None:
    for weigher in ("pack", "spread"):
        spread = weigher == "spread"
        truth = rank(candidates(every, req, ctx), req, weigher)
        few = queries.candidates(db, req, ctx, spread=spread, limit=None)
        got = rank(candidates(few, req, ctx), req, weigher)
        assert [h.name for h in got] == [h.name for h in truth]
        top = queries.candidates(db, req, ctx, spread=spread, limit=5)
        # the candidates among the SQL's best five RT-ready hosts (and best five
        # waived ones) are the best candidates of each kind, in order
        best = rank(candidates(top, req, ctx), req, weigher)
        for waived in (False, True):
            mine = [h.name for h in best if h.waived is waived]
            theirs = [h.name for h in truth if h.waived is waived]
            assert mine == theirs[: len(mine)]


def test_sql_counts_each_host_s_first_failure_exactly_as_the_filters(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    _seed(db, 400, random.Random(5))
    ctx = Context(now=NOW, agent_timeout_s=60)
    with db.read() as s:
        every = load_hosts(s)
    classes: set[str] = set()
    for spec in SPECS:
        for nets in NETWORKS:
            for target, since, disk in ASKS:
                req = replace(
                    Request.from_spec(spec, nets),
                    target_host=target,
                    qualified_since=since,
                    disk_gb=disk,
                )
                assert queries.exact_in_sql(req)
                truth: Counter[str] = Counter(first_failure(h, req, ctx) or "" for h in every)
                assert queries.refusal_counts(db, req, ctx) == dict(truth), (spec, nets, target)
                classes |= set(truth)
    assert classes == {name for name, _ in FILTERS} | {""}  # every class was met
    db.dispose()


def test_uneven_mixed_cells_are_left_to_the_pure_filters() -> None:
    spec = RtGuestSpec(vcpus=4, memory_mib=1024, cpu_policy="mixed", realtime_mask="^0-2",
                       numa_nodes=2)  # fmt: skip
    req = Request.from_spec(spec)
    assert req.cell_pcpus == (0, 1)
    assert not queries.exact_in_sql(req)
