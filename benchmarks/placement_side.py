"""OpenStack Placement beside rtkvm's scheduler: the same hosts, one question each.

:class:`Placement` runs the real ``openstack-placement`` at the version
rtkvm pins (``rtkvm.testing.placement``) on the benchmark's PostgreSQL server.
It seeds N flat resource providers straight into Placement's tables (30 PCPU and
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
import time
import urllib.request
import uuid

from sqlalchemy import create_engine, text

from rtkvm.db.pgtest import PostgresServer
from rtkvm.testing.placement import PlacementService

HEADERS = {"X-Auth-Token": "admin", "OpenStack-API-Version": "placement 1.39"}
QUERY = "resources=PCPU:4,MEMORY_MB:1024&required=CUSTOM_PHYSNET_BLUE&limit=1000"


class Placement:
    def __init__(self, server: PostgresServer) -> None:
        self.service = PlacementService(server)
        self.version = self.service.version

    def start(self, label: str) -> None:
        self.service.start(label)
        self.db_url = self.service.db_url
        self._request("PUT", "/traits/CUSTOM_PHYSNET_BLUE")

    def _request(self, method: str, path: str) -> bytes:
        req = urllib.request.Request(
            f"{self.service.endpoint}{path}", method=method, headers=HEADERS
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
        self.service.stop()


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000
