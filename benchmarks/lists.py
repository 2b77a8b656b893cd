"""Benchmark: a member's server list before and after 2,000 refused creates.

Starts ``rtkvm cloud serve`` on SQLite with a short retention for creates
refused before placement (``RTKVM_FAILED_CREATE_RETENTION``, 20 s here; a day
by default), puts 20 placed servers in a project, times ``GET /v1/instances``
(one page) and the client's walk over every page, then makes ``--refused``
creates that no host can take and times both again: while the refused ones
are kept, and once the retention has passed and the next create hid them.
Run with ``.venv/bin/python benchmarks/lists.py [--refused 2000]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from rtkvm.scheduler.fakehosts import fake_host
from rtkvm.testing.apiproc import free_port, start_api, wait_up
from rtkvm.wire.agent_client import AgentClient
from rtkvm.wire.node import HostReport
from rtkvm.wire.user_client import CloudClient

ADMIN = "rtk_bench-admin-token-0123456789abcdefghijklmnopqrs"
RETENTION_S = 20.0
SPECS = {"hw:cpu_policy": "dedicated", "hw:cpu_realtime": "yes", "hw:cpu_realtime_mask": "^0"}


def _timed(call: object, runs: int = 15) -> str:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1000)
    return f"p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--refused", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtkvm-bench-") as tmp:
        port, log = free_port(), Path(tmp) / "api.log"
        env = {"RTKVM_FAILED_CREATE_RETENTION": str(RETENTION_S)}
        proc = start_api(f"sqlite:///{tmp}/rtkvm.db", port, log, admin_token=ADMIN, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(port, proc, log)
            admin = CloudClient(base, ADMIN, timeout=30)
            admin.create_project("p1")
            admin.create_user("alice", "p1", "member")
            member = CloudClient(base, admin.create_token("alice").secret, timeout=30)
            agent = admin.enroll_host("node1").agent_token
            fake = fake_host(nodes=2, cores_per_node=32)
            AgentClient(base, agent).register(
                HostReport.model_validate(
                    {
                        "topology": fake.topology.model_dump(),
                        "plan": fake.plan.model_dump(mode="json"),
                        "doctor": {"verdict": "ready", "failed": []},
                        "dataplane_state": "ready",
                        "physnets": [],
                    }
                )
            )
            admin.create_flavor({"name": "rt2", "vcpus": 2, "ram": 512, "extra_specs": SPECS})
            admin.create_flavor({"name": "big", "vcpus": 64, "ram": 512, "extra_specs": SPECS})
            http = httpx.Client(base_url=base, headers=member.http.headers, timeout=30)
            for i in range(20):
                r = http.post("/v1/instances", json={"name": f"ok{i}", "flavor": "rt2"})
                r.raise_for_status()

            def page() -> None:
                http.get("/v1/instances").raise_for_status()

            def walk() -> None:
                member.servers()

            print(f"20 placed servers: one page {_timed(page)}; every page {_timed(walk)}")
            t0 = time.perf_counter()
            for i in range(args.refused):
                r = http.post("/v1/instances", json={"name": f"no{i}", "flavor": "big"})
                if r.status_code != 409:
                    raise SystemExit(f"a create that cannot fit answered {r.status_code}: {r.text}")
            made = time.perf_counter() - t0
            each = made / args.refused * 1000
            print(f"{args.refused} refused creates in {made:.1f} s ({each:.1f} ms each)")
            print(f"with them kept: one page {_timed(page)}; every page {_timed(walk)}")
            time.sleep(RETENTION_S + 1)  # the last refused create is now past its retention
            r = http.post("/v1/instances", json={"name": "after", "flavor": "rt2"})
            r.raise_for_status()  # a create hides what is past its retention
            listed = len(member.servers())
            print(f"after the retention ({RETENTION_S:g} s): {listed} servers listed; "
                  f"one page {_timed(page)}; every page {_timed(walk)}")  # fmt: skip
            if listed != 21:
                raise SystemExit(f"FAILED: {listed} servers listed, expected the 21 placed ones")
        finally:
            proc.terminate()
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
