"""Benchmark: the dashboard's pages with 1,000 hosts (and 10,000 with --hosts).

Seeds N simulated hosts (2 NUMA nodes x 16 cores, seeded as in scheduler.py; no
servers) into a fresh SQLite database, creates the app, logs the
admin in through ``POST /ui/session`` and times, through the app's real HTTP stack
(in-process transport, no sockets), the hosts page (every host's row: status, doctor,
RT pCPUs, last proof), one host's page (its partition map) and the servers page.
Prints p50 and max of 20 renders each, and the page size. Target: the hosts page
at 1,000 hosts well under a second. Run ``.venv/bin/python benchmarks/dashboard.py
[--hosts 1000 10000]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rtkvm.api.app import create_app
from rtkvm.api.testing import ADMIN_TOKEN, Cloud, FakeClock
from rtkvm.db.engine import Database
from rtkvm.settings import Settings
from scheduler import NOW, seed

RUNS = 20


def timed(client: object, path: str) -> tuple[float, float, int]:
    samples, size = [], 0
    for _ in range(RUNS):
        began = time.perf_counter()
        got = client.get(path)  # type: ignore[attr-defined]
        samples.append(time.perf_counter() - began)
        assert got.status_code == 200, (path, got.status_code, got.text[:300])
        size = len(got.content)
    return statistics.median(samples), max(samples), size


def run(hosts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        db = Database(url)
        db.migrate()
        seed(db, hosts, random.Random(7))
        db.dispose()
        settings = Settings(database_url=url, bootstrap_admin_token=ADMIN_TOKEN)
        app = create_app(settings, clock=FakeClock(NOW + 1))
        cloud = Cloud(app)
        try:
            browser = cloud.client(None)
            login = browser.post(
                "/ui/session", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, json={}
            )
            assert login.status_code == 200, login.text
            for label, path in (
                ("hosts page", "/ui/hosts"),
                ("one host (partition map)", "/ui/hosts/host00042"),
                ("servers page", "/ui/servers"),
            ):
                p50, worst, size = timed(browser, path)
                print(
                    f"{hosts:>6} hosts  {label:<26} p50 {p50 * 1000:7.1f} ms  "
                    f"max {worst * 1000:7.1f} ms  {size / 1024:7.1f} KiB"
                )
        finally:
            cloud.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000])
    for n in parser.parse_args().hosts:
        run(n)


if __name__ == "__main__":
    main()
