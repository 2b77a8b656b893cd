"""What the control plane exposes to Prometheus: the cloud's state read at scrape time, and
two timings observed as they happen.

At each scrape :class:`StateCollector` reads the database once per family:
hosts by status, readiness and engine; each host's RT pCPUs (total, used, and
guests per pCPU) per NUMA node and its heartbeat age; instances by state and
RT state; what each host's agent counted (its last heartbeat); degraded guests of
either engine; the worst cyclictest latency last
measured per server and per host. :class:`Metrics` also holds the histograms
the routes observe: the scheduler's decision time and the time from create to
active. Names, help texts and buckets are data here, in one place. This module
must not write to the database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from rtkvm.api.liveness import host_status
from rtkvm.api.proofs import last_cyclictests
from rtkvm.api.rtstate import HostRt, rt_state
from rtkvm.db.engine import Database
from rtkvm.db.models import GuestVerdict, Host, HostNode, Instance
from rtkvm.wire.lifecycle import LIVE_STATES

PREFIX = "rtkvm"
SCHEDULE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ACTIVE_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


AGENT_COUNTERS = {
    "steps": "Polls the host's agent made since it started.",
    "step_failures": "Polls that failed (the API or libvirt unreachable; retried).",
    "creates": "Guests the agent built and started.",
    "create_failures": "Guests the agent could not build (reported as error).",
    "deletes": "Guests the agent removed.",
    "rechecks": "RT checks of running guests whose result changed.",
    "power_tasks": "Stops, starts and reboots carried out.",
}
AGENT_GAUGES = {
    "uptime_seconds": "Seconds since the host's agent started.",
    "degraded_guests": "Guests whose last RT check by the agent found them degraded.",
    "last_step_seconds": "How long the agent's last poll took.",
}


class StateCollector(Collector):
    """The cloud as the database says now, one family per query."""

    def __init__(self, db: Database, clock: Callable[[], float], agent_timeout_s: float) -> None:
        self.db = db
        self.clock = clock
        self.timeout = agent_timeout_s

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        now = self.clock()
        with self.db.read() as s:
            hosts = list(s.scalars(select(Host).order_by(Host.name)))
            yield from self._hosts(hosts, now)
            yield from self._agents(hosts)
            yield self._pcpus(s, hosts)
            yield from self._instances(s, hosts)
            yield self._guest_verdicts(s)
            yield from self._worst(s)

    def _hosts(self, hosts: list[Host], now: float) -> Iterator[GaugeMetricFamily]:
        counts: dict[tuple[str, str, str], int] = {}
        age = GaugeMetricFamily(
            f"{PREFIX}_host_heartbeat_age_seconds",
            "Seconds since the host's agent was last heard (hosts that registered).",
            labels=["host"],
        )
        for h in hosts:
            readiness = "ready" if h.doctor_verdict == "ready" else (
                "waived" if h.rt_waiver is not None else h.doctor_verdict
            )  # fmt: skip
            key = (host_status(h, now, self.timeout), readiness, h.engine)
            counts[key] = counts.get(key, 0) + 1
            if h.heartbeat_at is not None:
                age.add_metric([h.name], max(now - h.heartbeat_at, 0.0))
        by_state = GaugeMetricFamily(
            f"{PREFIX}_hosts",
            "Hosts by status (up, down, enrolled), RT readiness (ready, waived, not-ready, "
            "unknown) and engine (rtkvm, openstack).",
            labels=["status", "readiness", "engine"],
        )
        for (status, readiness, engine), n in sorted(counts.items()):
            by_state.add_metric([status, readiness, engine], n)
        yield by_state
        yield age

    def _agents(self, hosts: list[Host]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """What each host's agent counted, as its last heartbeat said (AGENT_COUNTERS)."""
        counters = {
            key: CounterMetricFamily(f"{PREFIX}_agent_{key}", text, labels=["host"])
            for key, text in AGENT_COUNTERS.items()
        }
        gauges = {
            key: GaugeMetricFamily(f"{PREFIX}_agent_{key}", text, labels=["host"])
            for key, text in AGENT_GAUGES.items()
        }
        for h in hosts:
            if not h.agent_stats:
                continue
            stats = json.loads(h.agent_stats)
            for key, family in counters.items():
                family.add_metric([h.name], float(stats.get(key, 0)))
            for key, gauge in gauges.items():
                gauge.add_metric([h.name], float(stats.get(key, 0)))
        yield from counters.values()
        yield from gauges.values()

    def _pcpus(self, s: Any, hosts: list[Host]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            f"{PREFIX}_host_rt_pcpus",
            "RT pCPUs per host and NUMA node: total (guest slots: pCPUs x guests per pCPU), "
            "used, and share (guests per pCPU; above 1 only on a waived lab host).",
            labels=["host", "node", "kind"],
        )
        names = {h.id: (h.name, h.pcpu_share) for h in hosts}
        for node in s.scalars(select(HostNode).order_by(HostNode.host_id, HostNode.node)):
            name, share = names.get(node.host_id, ("?", 1))
            labels = [name, str(node.node)]
            family.add_metric([*labels, "total"], node.rt_total)
            family.add_metric([*labels, "used"], node.rt_used)
            family.add_metric([*labels, "share"], share)
        return family

    def _instances(self, s: Any, hosts: list[Host]) -> Iterator[GaugeMetricFamily]:
        ready = {h.id: HostRt(h.name, h.doctor_verdict, tuple(json.loads(h.doctor_failed)),
                              h.rt_waiver) for h in hosts}  # fmt: skip
        counts: dict[tuple[str, str], int] = {}
        rows = s.execute(
            select(Instance.state, Instance.rt_state.label("checked"), Instance.host_id).where(
                Instance.state.in_(LIVE_STATES)
            )
        )
        for state, checked, host_id in rows:
            placed = state in ("active", "error") and host_id is not None
            seen = rt_state(checked, [], ready.get(host_id) if placed else None)[0]
            counts[(state, seen)] = counts.get((state, seen), 0) + 1
        family = GaugeMetricFamily(
            f"{PREFIX}_instances",
            "rtkvm's instances by state and RT state (verified, degraded, not-assured, "
            "unverified).",
            labels=["state", "rt_state"],
        )
        for (state, seen_state), n in sorted(counts.items()):
            family.add_metric([state, seen_state], n)
        yield family

    def _guest_verdicts(self, s: Any) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            f"{PREFIX}_guest_verdicts",
            "Guests Nova built, by the RT verdict their host's agent last reported.",
            labels=["verdict"],
        )
        rows = s.execute(select(GuestVerdict.verdict, func.count()).group_by(GuestVerdict.verdict))
        for verdict, n in sorted(rows):
            family.add_metric([verdict], n)
        return family

    def _worst(self, s: Any) -> Iterator[GaugeMetricFamily]:
        """The worst latency of each live instance's last finished cyclictest, and each
        host's worst over those."""
        server = GaugeMetricFamily(
            f"{PREFIX}_server_worst_latency_us",
            "Worst cyclictest latency (µs) of the server's last finished measurement; "
            "emulated=1: measured under TCG, meaningless for real time.",
            labels=["server", "name", "host", "emulated"],
        )
        per_host: dict[tuple[str, str], float] = {}
        for p in last_cyclictests(s):
            emulated = "1" if p.emulated else "0"
            server.add_metric([p.instance_id, p.name, p.host, emulated], p.worst_us)
            key = (p.host, emulated)
            per_host[key] = max(per_host.get(key, 0.0), p.worst_us)
        host_family = GaugeMetricFamily(
            f"{PREFIX}_host_worst_latency_us",
            "Worst of its servers' last cyclictest latencies (µs).",
            labels=["host", "emulated"],
        )
        for (host, emulated), worst in sorted(per_host.items()):
            host_family.add_metric([host, emulated], worst)
        yield server
        yield host_family


class Metrics:
    """The registry of one API app: the state collector and the routes' histograms."""

    def __init__(self, db: Database, clock: Callable[[], float], agent_timeout_s: float) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(db, clock, agent_timeout_s))
        self.schedule_seconds = Histogram(
            f"{PREFIX}_schedule_seconds",
            "Time the scheduler took to decide and claim, per create that reached it.",
            labelnames=["outcome"],
            buckets=SCHEDULE_BUCKETS,
            registry=self.registry,
        )
        self.create_to_active_seconds = Histogram(
            f"{PREFIX}_create_to_active_seconds",
            "Time from a server's create to its agent reporting it active.",
            buckets=ACTIVE_BUCKETS,
            registry=self.registry,
        )

    def text(self) -> bytes:
        return generate_latest(self.registry)
