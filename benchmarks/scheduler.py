"""Benchmark: scheduler decisions, refusals and claims with 1,000 and 10,000 hosts.

Seeds N simulated hosts (2 NUMA nodes x 16 cores, 30 RT pCPUs; 10 % down,
5 % not RT-ready, 30 % not wired to the guest's network; nothing claimed yet)
straight into a fresh database, then measures:

- decision: the one prepared SQL statement for the best few hosts that may
  fit, then the pure filters and weighers over them (what every create does
  before its claim transaction);
- the same when the cloud requires qualified hosts (80 % of them are);
- the same for a server with a 40 GiB disk (hosts have 20 to 500 GiB for disks, some
  already promised; 5 % never reported theirs);
- the same with 90 % of the hosts full (measured last, after the refusals);
- refusal: no host fits (too many pCPUs; too many hugepages), and every
  host's first failing filter is counted in SQL for the explanation;
- create: decision + claim transaction (pinning with rtkvm.domain.placement,
  claim rows, counters, quota, instance update), as ``POST /v1/instances``
  runs it minus HTTP and the instance row.

Prints rates and p50/p99 latency. SQLite by default; add ``--postgresql`` to
also run on a throw-away PostgreSQL server (Debian's postgresql package).
Targets: decision p50 <= 0.5 ms (SQLite) and <= 1.5 ms (PostgreSQL), at most
twice that with 90 % of hosts full; a refusal explained in <= 10 ms at 10,000
hosts; create p50 <= 3 ms (SQLite) and <= 8 ms (PostgreSQL). With
``--placement`` (and ``--postgresql``), OpenStack Placement at the pinned
version answers the same question on the same hosts (``placement_side.py``)
and the ratio is printed. Run ``.venv/bin/python benchmarks/scheduler.py
[--hosts 1000 10000] [--postgresql [--placement]]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from sqlalchemy import insert, text, update

from rtkvm.db.engine import Database
from rtkvm.db.models import Host, HostDetail, HostNode, Instance, Project, User
from rtkvm.db.pgtest import PostgresServer
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.errors import NoValidHostError
from rtkvm.scheduler.claim import decide, refresh_capacity, schedule
from rtkvm.scheduler.fakehosts import fake_host
from rtkvm.scheduler.filters import Context, candidates
from rtkvm.scheduler.hostdata import node_rows
from rtkvm.scheduler.loader import load_hosts
from rtkvm.scheduler.snapshot import HostSnapshot, Request

NOW = 1_000_000.0
SPEC = RtGuestSpec(name="rt4", vcpus=4, memory_mib=1024, realtime_mask="^0")
REQUEST = Request.from_spec(SPEC, (("blue", "blue"),))
TOO_BIG = Request.from_spec(
    RtGuestSpec(name="rt40", vcpus=40, memory_mib=1024, realtime_mask="^0"), (("blue", "blue"),)
)
"""More pCPUs than any node has: the host rows alone say why."""
TOO_MUCH_MEMORY = Request.from_spec(
    RtGuestSpec(name="rt4m", vcpus=4, memory_mib=20480, realtime_mask="^0"), (("blue", "blue"),)
)
"""More 2M pages than any node has: every wired host's nodes are counted to say why."""


def seed(db: Database, hosts: int, rng: random.Random) -> tuple[int, int]:
    fake = fake_host(nodes=2, cores_per_node=16, hugepages_2m=8192)
    topology = fake.topology.model_dump_json()
    plan = fake.plan.model_dump_json()
    rows = node_rows(fake.topology.to_topology(), fake.plan, 1024)
    host_rows = []
    for i in range(hosts):
        roll = rng.random()
        host_rows.append(
            {
                "id": i + 1,
                "name": f"host{i:05d}",
                "enrolled_at": NOW,
                "registered_at": NOW,
                "heartbeat_at": NOW - (600 if roll < 0.10 else 5),
                "doctor_verdict": "not-ready" if 0.10 <= roll < 0.15 else "ready",
                "doctor_failed": "[]",
                "dataplane_state": "ready",
                "physnets": json.dumps(["red"] if rng.random() < 0.3 else ["blue", "red"]),
                # 80 % qualified (rtkvm cloud host qualify) an hour ago
                "qualified_at": NOW - 3600 if rng.random() < 0.8 else None,
                "disk_gb_total": None if rng.random() < 0.05 else rng.choice([20, 100, 500]),
            }
        )
        host_rows[-1]["disk_gb_used"] = rng.randint(0, host_rows[-1]["disk_gb_total"] or 0)
    node_dicts = [
        {
            "host_id": i + 1,
            "node": r.node,
            "rt_pcpus": str(r.rt_pcpus),
            "rt_total": len(r.rt_pcpus),
            # counters only: the claim transaction trusts claim rows for which pCPUs
            "rt_used": 0,
            "hp2m_total": r.hp2m_total,
            "hp2m_used": 0,
            "hp1g_total": 0,
            "hp1g_used": 0,
        }
        for i in range(hosts)
        for r in rows
    ]
    with db.write() as s:
        for start in range(0, hosts, 2000):
            s.execute(insert(Host), host_rows[start : start + 2000])
        for start in range(0, len(node_dicts), 2000):
            s.execute(insert(HostNode), node_dicts[start : start + 2000])
        details = [{"host_id": i + 1, "topology": topology, "plan": plan} for i in range(hosts)]
        for start in range(0, hosts, 2000):
            s.execute(insert(HostDetail), details[start : start + 2000])
        refresh_capacity(s, None)
        project = Project(name="bench", created_at=NOW, rt_cores_used=0, instances_used=0)
        s.add(project)
        s.flush()
        user = User(name="bench", project_id=project.id, role="member", created_at=NOW)
        s.add(user)
        s.flush()
        ids = project.id, user.id
    with db.write() as s:  # fresh planner statistics, as autovacuum would give a live system
        s.execute(text("ANALYZE"))
    return ids


def _new_instance(db: Database, project_id: int, user_id: int) -> str:
    iid = str(uuid.uuid4())
    with db.write() as s:
        s.add(
            Instance(
                id=iid,
                name="b",
                project_id=project_id,
                user_id=user_id,
                flavor_name="rt4",
                spec=SPEC.model_dump_json(),
                state="scheduling",
                rt_cores=0,
                placement="{}",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    return iid


def _stats(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    rate = len(ms) / (sum(ms) / 1000)
    return (
        f"{name:9s} {rate:8.1f}/s  p50 {statistics.median(ms):7.2f} ms  "
        f"p99 {p99:7.2f} ms  (n={len(ms)})"
    )


def run(
    label: str, url: str, hosts: int, decisions: int, creates: int
) -> tuple[float, list[HostSnapshot]]:
    """Seed, measure and print; returns the decision p50 (ms) and the hosts as they were
    seeded (for Placement's providers)."""
    rng = random.Random(42)
    db = Database(url)
    db.migrate()
    t0 = time.perf_counter()
    project_id, user_id = seed(db, hosts, rng)
    seeded = time.perf_counter() - t0
    ctx = Context(now=NOW, agent_timeout_s=60)
    decisions_s: list[float] = []
    for _ in range(decisions):
        t = time.perf_counter()
        best = decide(db, REQUEST, ctx, "pack")
        decisions_s.append(time.perf_counter() - t)
        assert best
    qualified_s: list[float] = []
    strict = replace(REQUEST, qualified_since=NOW - 86400)  # qualified within a day
    for _ in range(decisions):
        t = time.perf_counter()
        best = decide(db, strict, ctx, "pack")
        qualified_s.append(time.perf_counter() - t)
        assert best and all(h.qualified_at is not None for h in best)
    disk_s: list[float] = []
    with_disk = replace(REQUEST, disk_gb=40)
    for _ in range(decisions):
        t = time.perf_counter()
        best = decide(db, with_disk, ctx, "pack")
        disk_s.append(time.perf_counter() - t)
        assert best and all((h.disk_free_gb or 0) >= 40 for h in best)
    create: list[float] = []
    for _ in range(creates):
        iid = _new_instance(db, project_id, user_id)
        t = time.perf_counter()
        schedule(
            db,
            instance_id=iid,
            project_id=project_id,
            spec=SPEC,
            request=REQUEST,
            weigher="pack",
            agent_timeout_s=60,
            max_attempts=16,
            now=NOW,
        )
        create.append(time.perf_counter() - t)
    refusals: dict[str, list[float]] = {"pCPUs": [], "memory": []}
    for kind, request in (("pCPUs", TOO_BIG), ("memory", TOO_MUCH_MEMORY)):
        for _ in range(max(5, decisions // 10)):
            t = time.perf_counter()
            try:
                decide(db, request, ctx, "pack")
                raise SystemExit("FAILED: a flavor no host can take was placed")
            except NoValidHostError as exc:
                refusals[kind].append(time.perf_counter() - t)
                why = str(exc)
    with db.read() as s:
        every = load_hosts(s)
    fitting = candidates(every, REQUEST, ctx)
    as_seeded = sorted(every, key=lambda h: h.id)
    with db.write() as s:  # 90 % of the hosts full: the decision must not walk past them
        s.execute(
            update(HostNode).where(HostNode.host_id % 10 != 0).values(rt_used=HostNode.rt_total)
        )
        refresh_capacity(s, None)
    full_s: list[float] = []
    for _ in range(decisions):
        t = time.perf_counter()
        decide(db, REQUEST, ctx, "pack")
        full_s.append(time.perf_counter() - t)
    print(f"{label}, {hosts} hosts (seeded in {seeded:.1f} s; {len(fitting)} fit at the end):")
    print("  " + _stats("decision", decisions_s))
    print("  " + _stats("qualified", qualified_s) + "  (qualified hosts required: 80 % are)")
    print("  " + _stats("disk", disk_s) + "  (a 40 GiB disk: hosts have 20 to 500 GiB)")
    print("  " + _stats("90% full", full_s) + "  (a decision with 90 % of the hosts full)")
    for kind, samples in refusals.items():
        print("  " + _stats("refusal", samples) + f"  (no host has the {kind}; explained)")
    print("  " + _stats("create", create))
    print(f"  the refusal said: {why[:160]}...")
    db.dispose()
    return statistics.median(decisions_s) * 1000, as_seeded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument(
        "--placement",
        action="store_true",
        help="with --postgresql: also time OpenStack Placement's GET /allocation_candidates "
        "on the same hosts (installs it in its own virtualenv on first use)",
    )
    args = parser.parse_args()
    if args.placement and not args.postgresql:
        parser.error("--placement needs --postgresql (Placement runs on the same server)")
    with tempfile.TemporaryDirectory(prefix="rtkvm-sched-bench-") as tmp:
        for n in args.hosts:
            scale = max(1, n // 1000)
            dec = max(20, args.decisions // scale)
            cre = max(20, args.creates // scale)
            run("sqlite", f"sqlite:///{Path(tmp) / f'{n}.db'}", n, dec, cre)
    if args.postgresql:
        server = PostgresServer().start()
        try:
            for n in args.hosts:
                scale = max(1, n // 1000)
                dec = max(20, args.decisions // scale)
                cre = max(20, args.creates // scale)
                mine, seeded = run("postgresql", server.new_database(f"bench{n}_"), n, dec, cre)
                if args.placement:
                    compare(server, seeded, mine, dec)
        finally:
            server.stop()


def compare(server: PostgresServer, hosts: list[HostSnapshot], mine: float, runs: int) -> None:
    """Placement's answer to the same question on the same hosts, the ratio, and what
    publishing a node's traits costs at this size."""
    from placement_side import Placement, p50_ms, query

    placement = Placement(server)
    try:
        placement.start(str(len(hosts)))
        placement.seed(hosts)
        samples, found = placement.time_candidates(max(5, runs // 4))
        flips, refreshes = placement.time_publish(hosts, 100)
    finally:
        placement.stop()
    theirs = p50_ms(samples)
    print(
        f"  Placement {placement.version} GET /allocation_candidates?{query()} "
        f"({found} returned): p50 {theirs:.1f} ms = {theirs / mine:.0f} x rtkvm's decision "
        f"({mine:.2f} ms)"
    )
    print(
        f"  publishing a node's traits through Placement's API: a readiness change p50 "
        f"{p50_ms(flips):.1f} ms (one write), a refresh with nothing to change p50 "
        f"{p50_ms(refreshes):.1f} ms (n={len(flips)}); every node once, one client: "
        f"{len(hosts) * p50_ms(refreshes) / 1000:.0f} s"
    )


if __name__ == "__main__":
    main()
