"""OpenStack Placement beside rtkvm's scheduler: the same hosts, the same question.

:class:`Placement` runs the real ``openstack-placement`` at the version rtkvm
pins (``rtkvm.testing.placement``) on the benchmark's PostgreSQL server. It
seeds one flat resource provider per rtkvm host straight into Placement's tables
(30 PCPU and 64 GiB of MEMORY_MB each) carrying the traits rtkvm would publish
for that host (``rtkvm.openstack.traits.node_traits``: RT readiness from its
doctor verdict, one per wired physical network), then:

- times ``GET /allocation_candidates`` for 4 PCPU and 1 GiB on a provider with
  ``CUSTOM_RTKVM_RT_READY`` and ``CUSTOM_RTKVM_NET_BLUE``, with Nova's default
  ``limit=1000`` (``[scheduler] max_placement_results``): what Nova asks for an
  RT flavor synced by rtkvm. No allocations, no nested NUMA providers:
  Placement's easiest form of the question, where rtkvm's decision also places
  the guest on one NUMA node;
- times ``rtkvm.openstack.publish`` through the API, as a node's report does it:
  a change of readiness (one write) and a refresh with nothing to change (reads
  only), over a sample of the nodes.
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request
import uuid

from sqlalchemy import create_engine, text

from rtkvm.db.pgtest import PostgresServer
from rtkvm.openstack.placement import PlacementClient
from rtkvm.openstack.publish import publish
from rtkvm.openstack.traits import names, node_traits
from rtkvm.scheduler.snapshot import HostSnapshot
from rtkvm.testing.placement import TOKEN, PlacementService

HEADERS = {"X-Auth-Token": TOKEN, "OpenStack-API-Version": "placement 1.39"}


def query() -> str:
    n = names()
    required = f"{n.rt_ready},{n.network_trait('blue')}"
    return f"resources=PCPU:4,MEMORY_MB:1024&required={required}&limit=1000"


class Placement:
    def __init__(self, server: PostgresServer) -> None:
        self.service = PlacementService(server)
        self.version = self.service.version

    def start(self, label: str) -> None:
        self.service.start(label)
        self.db_url = self.service.db_url

    def _get(self, path: str) -> bytes:
        req = urllib.request.Request(f"{self.service.endpoint}{path}", headers=HEADERS)
        with urllib.request.urlopen(req, timeout=120) as response:
            return bytes(response.read())

    def seed(self, hosts: list[HostSnapshot]) -> None:
        """One provider per host, with the traits rtkvm would publish for it."""
        wanted = [node_traits(h.doctor_verdict, h.rt_waiver, h.physnets) for h in hosts]
        client = PlacementClient(self.service.endpoint, TOKEN)
        for trait in sorted(set().union(*wanted)):
            client.ensure_trait(trait)
        client.close()
        engine = create_engine(self.db_url)
        now = "2026-01-01 00:00:00"
        with engine.begin() as conn:
            classes = dict(conn.execute(text("SELECT name, id FROM resource_classes")).all())
            trait_ids = dict(conn.execute(text("SELECT name, id FROM traits")).all())
            conn.execute(
                text(
                    "INSERT INTO resource_providers (id, uuid, name, generation, "
                    "root_provider_id, created_at) VALUES (:id, :uuid, :name, 1, :id, :now)"
                ),
                [
                    {"id": i + 1, "uuid": str(uuid.uuid4()), "name": h.name, "now": now}
                    for i, h in enumerate(hosts)
                ],
            )
            conn.execute(
                text(
                    "INSERT INTO inventories (resource_provider_id, resource_class_id, total, "
                    "reserved, min_unit, max_unit, step_size, allocation_ratio, created_at) "
                    "VALUES (:rp, :rc, :total, 0, 1, :total, 1, 1.0, :now)"
                ),
                [
                    {"rp": i + 1, "rc": classes[rc], "total": total, "now": now}
                    for i in range(len(hosts))
                    for rc, total in (("PCPU", 30), ("MEMORY_MB", 65536))
                ],
            )
            conn.execute(
                text(
                    "INSERT INTO resource_provider_traits (trait_id, resource_provider_id, "
                    "created_at) VALUES (:trait, :rp, :now)"
                ),
                [
                    {"trait": trait_ids[t], "rp": i + 1, "now": now}
                    for i, traits in enumerate(wanted)
                    for t in traits
                ],
            )
            conn.execute(text("ANALYZE"))
        engine.dispose()

    def time_candidates(self, runs: int) -> tuple[list[float], int]:
        """Seconds per ``GET /allocation_candidates`` (after a warm-up), and how many
        candidates the last answer held."""
        self._get(f"/allocation_candidates?{query()}")
        samples = []
        found = 0
        for _ in range(runs):
            t = time.perf_counter()
            body = self._get(f"/allocation_candidates?{query()}")
            samples.append(time.perf_counter() - t)
            found = len(json.loads(body)["allocation_requests"])
        return samples, found

    def time_publish(self, hosts: list[HostSnapshot], sample: int) -> tuple[list[float], ...]:
        """Seconds per publish of a node whose readiness flips (one write), then per
        refresh of the same nodes with nothing to change (reads only)."""
        client = PlacementClient(self.service.endpoint, TOKEN)
        step = max(1, len(hosts) // sample)
        chosen = hosts[::step][:sample]
        flips, refreshes = [], []
        for h in chosen:
            flipped = "not-ready" if h.doctor_verdict == "ready" else "ready"
            wanted = node_traits(flipped, None, h.physnets)
            t = time.perf_counter()
            done = publish(client, h.name, wanted)
            flips.append(time.perf_counter() - t)
            if done.attempts != 1:
                raise SystemExit(f"FAILED: publishing {h.name} took {done.attempts} writes")
            t = time.perf_counter()
            again = publish(client, h.name, wanted)
            refreshes.append(time.perf_counter() - t)
            if again.attempts != 0:
                raise SystemExit(f"FAILED: an unchanged node {h.name} was written again")
        client.close()
        return flips, refreshes

    def stop(self) -> None:
        self.service.stop()


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000
