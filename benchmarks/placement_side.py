"""OpenStack Placement beside rtkvm's scheduler: the same hosts, one question each.

:class:`Placement` runs the real ``openstack-placement`` at the version
rtkvm pins (its own virtualenv, ``rtkvm.openstack.venvs``), on a database of
the benchmark's PostgreSQL server, behind ``wsgiref`` with ``noauth2``. It
seeds N flat resource providers straight into Placement's tables (30 PCPU and
64 GiB of MEMORY_MB each, 70 % carrying ``CUSTOM_PHYSNET_BLUE``: the wiring
rtkvm's seed gives its hosts) and times ``GET /allocation_candidates`` for 4
PCPU and 1 GiB on a provider with that trait, with Nova's default
``limit=1000`` (``[scheduler] max_placement_results``). No allocations, no
nested NUMA providers: Placement's easiest form of the question, where
rtkvm's decision also places the guest on one NUMA node.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from rtkvm.db.pgtest import PostgresServer
from rtkvm.openstack.venvs import ensure_venv, pins
from rtkvm.testing.apiproc import free_port

RUNNER = """
import os, sys
os.environ["OS_PLACEMENT_CONFIG_DIR"] = sys.argv[1]
from wsgiref.simple_server import WSGIRequestHandler, make_server
from placement.wsgi import api

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

make_server("127.0.0.1", int(sys.argv[2]), api.application, handler_class=Quiet).serve_forever()
"""
HEADERS = {"X-Auth-Token": "admin", "OpenStack-API-Version": "placement 1.39"}
QUERY = "resources=PCPU:4,MEMORY_MB:1024&required=CUSTOM_PHYSNET_BLUE&limit=1000"


class Placement:
    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.venv = ensure_venv("placement")
        self.version = pins()["placement"].version
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, label: str) -> None:
        url = self.server.new_database(f"placement_{label}_")
        self.db_url = url
        conf = Path(tempfile.mkdtemp(prefix="rtkvm-placement-"))
        connection = url.replace("postgresql+psycopg://", "postgresql+psycopg2://")
        (conf / "placement.conf").write_text(
            f"[api]\nauth_strategy = noauth2\n[placement_database]\nconnection = {connection}\n"
        )
        (conf / "run.py").write_text(RUNNER)
        python = str(self.venv / "bin" / "python")
        subprocess.run(
            [str(self.venv / "bin" / "placement-manage"), "--config-file",
             str(conf / "placement.conf"), "db", "sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.port = free_port()
        self.log = conf / "placement.log"
        self.proc = subprocess.Popen(
            [python, str(conf / "run.py"), str(conf), str(self.port)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self._get("/resource_classes")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    tail = self.log.read_text()[-2000:]
                    raise SystemExit(f"Placement did not start: {tail}") from None
                time.sleep(0.3)
        self._request("PUT", "/traits/CUSTOM_PHYSNET_BLUE")

    def _request(self, method: str, path: str) -> bytes:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method, headers=HEADERS
        )
        with urllib.request.urlopen(req, timeout=120) as response:
            return bytes(response.read())

    def _get(self, path: str) -> bytes:
        return self._request("GET", path)

    def seed(self, hosts: int, wired: list[bool]) -> None:
        """``hosts`` providers straight into Placement's tables (``wired[i]``: host i has
        CUSTOM_PHYSNET_BLUE)."""
        engine = create_engine(self.db_url)
        now = "2026-01-01 00:00:00"
        with engine.begin() as conn:
            classes = dict(conn.execute(text("SELECT name, id FROM resource_classes")).all())
            trait = conn.execute(
                text("SELECT id FROM traits WHERE name = 'CUSTOM_PHYSNET_BLUE'")
            ).scalar_one()
            providers = [
                {"id": i + 1, "uuid": str(uuid.uuid4()), "name": f"host{i:05d}", "now": now}
                for i in range(hosts)
            ]
            conn.execute(
                text(
                    "INSERT INTO resource_providers (id, uuid, name, generation, "
                    "root_provider_id, created_at) VALUES (:id, :uuid, :name, 1, :id, :now)"
                ),
                providers,
            )
            inventories = [
                {"rp": i + 1, "rc": classes[rc], "total": total, "max": total, "now": now}
                for i in range(hosts)
                for rc, total in (("PCPU", 30), ("MEMORY_MB", 65536))
            ]
            conn.execute(
                text(
                    "INSERT INTO inventories (resource_provider_id, resource_class_id, total, "
                    "reserved, min_unit, max_unit, step_size, allocation_ratio, created_at) "
                    "VALUES (:rp, :rc, :total, 0, 1, :max, 1, 1.0, :now)"
                ),
                inventories,
            )
            conn.execute(
                text(
                    "INSERT INTO resource_provider_traits (trait_id, resource_provider_id, "
                    "created_at) VALUES (:trait, :rp, :now)"
                ),
                [{"trait": trait, "rp": i + 1, "now": now} for i in range(hosts) if wired[i]],
            )
            conn.execute(text("ANALYZE"))
        engine.dispose()

    def time_candidates(self, runs: int) -> tuple[list[float], int]:
        """Seconds per ``GET /allocation_candidates`` (after a warm-up), and how many
        candidates the last answer held."""
        self._get(f"/allocation_candidates?{QUERY}")
        samples = []
        found = 0
        for _ in range(runs):
            t = time.perf_counter()
            body = self._get(f"/allocation_candidates?{QUERY}")
            samples.append(time.perf_counter() - t)
            found = len(json.loads(body)["allocation_requests"])
        return samples, found

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000
