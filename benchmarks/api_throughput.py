"""Benchmark: creates per second through 1, 2 and 4 real API processes on one PostgreSQL.

For each process count P: a fresh database on a throw-away PostgreSQL server
(Debian's postgresql), ``--hosts`` simulated hosts seeded straight into it
(as benchmarks/scheduler.py does, their heartbeats fresh), P ``rtkvm cloud
serve`` processes, and ``--clients`` client processes that POST
``/v1/instances`` back to back for ``--seconds``, spread over the P
processes. Prints creates per second and the latency of a create (HTTP
included), then checks the database's invariants through ``GET /v1/check``
(no pCPU claimed twice, counters equal to the claims) and exits non-zero if
any is broken or any create answered other than 201. The machine's cores are
shared by PostgreSQL, the API processes and the clients: the scaling it shows
is bounded by them. Run ``.venv/bin/python benchmarks/api_throughput.py``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).parent))

from rtkvm.db.engine import Database
from rtkvm.db.models import Host
from rtkvm.db.pgtest import PostgresServer
from rtkvm.testing.apiproc import free_port, start_api, wait_up
from rtkvm.wire.user_client import CloudClient
from scheduler import seed

ADMIN = "rtk_bench-admin-token-0123456789abcdefghijklmnopqrs"
SPECS = {"hw:cpu_policy": "dedicated", "hw:cpu_realtime": "yes", "hw:cpu_realtime_mask": "^0"}


TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int, children_too: bool = False) -> float:
    """CPU seconds a process used (with its live children and reaped ones, if asked)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = int(fields[11]) + int(fields[12])  # utime, stime
    if children_too:
        total += int(fields[13]) + int(fields[14])  # reaped children
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                child = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(child[1]) == pid:
                total += int(child[11]) + int(child[12])
    return total / TICK


def _client(
    bases: list[str], token: str, seconds: float, index: int, out: multiprocessing.Queue[object]
) -> None:
    """Create servers back to back until time is up; put (latencies, failures). Plain
    http.client keep-alive connections: the clients share the machine's cores with the
    servers, so they should cost as little as possible."""
    conns = [http.client.HTTPConnection(urlsplit(b).netloc, timeout=60) for b in bases]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    failures: list[str] = []
    cpu_start, started = time.process_time(), time.time()
    end = time.monotonic() + seconds
    n = index
    while time.monotonic() < end:
        conn = conns[n % len(conns)]
        n += 1
        body = json.dumps({"name": f"c{index}-{n}", "flavor": "rt2", "networks": ["blue"]})
        t = time.perf_counter()
        conn.request("POST", "/v1/instances", body=body, headers=headers)
        response = conn.getresponse()
        text = response.read()
        latencies.append(time.perf_counter() - t)
        if response.status != 201:
            failures.append(f"{response.status} {text[:200]!r}")
    out.put((latencies, failures, time.process_time() - cpu_start, started, time.time()))


def run(server: PostgresServer, processes: int, args: argparse.Namespace) -> bool:
    url = server.new_database(f"tput{processes}_")
    db = Database(url)
    db.migrate()
    seed(db, args.hosts, random.Random(42))
    with db.write() as s:  # every seeded host up now (the servers use the real clock)
        s.execute(update(Host).values(heartbeat_at=time.time() + 3600))
    db.dispose()
    logs = Path(tempfile.mkdtemp(prefix="rtkvm-tput-"))
    env = {"RTKVM_AGENT_TIMEOUT": "7200"}
    ports = [free_port() for _ in range(processes)]
    procs = [
        start_api(url, port, logs / f"api{i}.log", admin_token=ADMIN, env=env)
        for i, port in enumerate(ports)
    ]
    try:
        for port, proc, i in zip(ports, procs, range(processes), strict=True):
            wait_up(port, proc, logs / f"api{i}.log")
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        admin = CloudClient(bases[0], ADMIN, timeout=30)
        admin.create_project("load")
        admin.create_user("loader", "load", "member")
        token = admin.create_token("loader").secret
        admin.create_flavor({"name": "rt2", "vcpus": 2, "ram": 512, "extra_specs": SPECS})
        admin.create_network({"name": "blue", "physnet": "blue", "shared": True})
        ctx = multiprocessing.get_context("spawn")
        queue: multiprocessing.Queue[object] = ctx.Queue()
        workers = [
            ctx.Process(target=_client, args=(bases, token, args.seconds, i, queue))
            for i in range(args.clients)
        ]
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        cpu_before = (sum(_cpu_s(p.pid) for p in procs), _cpu_s(postmaster, children_too=True))
        for w in workers:
            w.start()
        results: list[Any] = [queue.get() for _ in workers]
        for w in workers:
            w.join()
        window = max(r[4] for r in results) - min(r[3] for r in results)  # clients' run
        api_cpu = sum(_cpu_s(p.pid) for p in procs) - cpu_before[0]
        pg_cpu = _cpu_s(postmaster, children_too=True) - cpu_before[1]
        client_cpu = sum(r[2] for r in results)
        latencies = [t for r in results for t in r[0]]
        failures = [f for r in results for f in r[1]]
        ms = sorted(t * 1000 for t in latencies)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        check = admin.check()
        print(
            f"{processes} API process(es), {args.clients} clients: "
            f"{(len(ms) - len(failures)) / window:7.1f} creates/s; create p50 "
            f"{statistics.median(ms):6.1f} ms, p99 {p99:6.1f} ms; {len(ms)} creates, "
            f"{len(failures)} not 201; invariants: "
            f"{'hold' if check.ok else '; '.join(check.violations[:5])}"
        )
        n = max(1, len(ms))
        print(
            f"    CPU per create: API {api_cpu / n * 1000:.1f} ms, PostgreSQL "
            f"{pg_cpu / n * 1000:.1f} ms, clients {client_cpu / n * 1000:.1f} ms "
            f"(API and PostgreSQL counted from the clients' start to their end)"
        )
        for failure in failures[:5]:
            print(f"    {failure}")
        return check.ok and not failures
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hosts", type=int, default=1000)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs shared by PostgreSQL, the API processes and the clients")
    server = PostgresServer().start()
    try:
        ok = all([run(server, p, args) for p in args.processes])
    finally:
        server.stop()
    if not ok:
        raise SystemExit("FAILED: a create failed or an invariant is broken (see above)")


if __name__ == "__main__":
    main()
