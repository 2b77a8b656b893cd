"""Pure filters, weighers and explanations over many simulated host snapshots."""

from __future__ import annotations

import random

import pytest

from rtkvm.domain.spec import RtGuestSpec
from rtkvm.scheduler.filters import Context, candidates, explain, fit_nodes, rank
from rtkvm.scheduler.snapshot import HostSnapshot, NodeSnapshot, Request

NOW = 10_000.0
CTX = Context(now=NOW, agent_timeout_s=60)


def host(
    name: str,
    free: tuple[int, ...] = (7, 7),
    *,
    total: int = 7,
    pages: int = 4096,
    mib: int = 0,
    physnets: tuple[str, ...] = ("blue",),
    verdict: str = "ready",
    heartbeat: float | None = NOW - 5,
    dataplane: str = "ready",
) -> HostSnapshot:
    nodes = tuple(
        NodeSnapshot(i, total, f, ((2048, pages), (1048576, 0)), mib) for i, f in enumerate(free)
    )
    return HostSnapshot(
        abs(hash(name)) % 100000, name, heartbeat, verdict, dataplane, frozenset(physnets), nodes
    )


def req(
    vcpus: int = 4, *, isolate: bool = False, nets: tuple[str, ...] = ("blue",), **kw: object
) -> Request:
    fields: dict[str, object] = {"name": "rt", "vcpus": vcpus, "memory_mib": 1024}
    if isolate:
        fields["emulator_threads_policy"] = "isolate"
    else:
        fields["realtime_mask"] = "^0"
    fields.update(kw)
    spec = RtGuestSpec.model_validate(fields)
    return Request.from_spec(spec, tuple((n, n) for n in nets))


def test_request_counts_the_isolated_emulator_cpu_and_hugepages() -> None:
    r = req(4, isolate=True)
    assert r.cell_pcpus == (5,)
    assert (r.page_kib, r.pages_per_cell) == (2048, 512)
    two = req(4, numa_nodes=2)
    assert two.cell_pcpus == (2, 2)
    assert two.pages_per_cell == 256


@pytest.mark.parametrize(
    ("snapshot", "passes"),
    [
        (host("ok"), True),
        (host("stale", heartbeat=NOW - 61), False),
        (host("never", heartbeat=None), False),
        (host("notready", verdict="not-ready"), False),
        (host("unwired", physnets=("red",)), False),
        (host("noswitch", dataplane="stopped"), False),
        (host("full", free=(3, 3)), False),
        (host("onenode", free=(4, 0)), True),
        (host("split", free=(2, 2)), False),  # 4 free in total, but not on one node
        (host("nopages", pages=100), False),
        (host("unregistered", free=()), False),
    ],
)
def test_each_filter(snapshot: HostSnapshot, passes: bool) -> None:
    assert (candidates([snapshot], req(4), CTX) == [snapshot]) is passes


def test_isolate_needs_one_more_pcpu_on_the_node() -> None:
    assert candidates([host("h", free=(4, 4))], req(4), CTX)
    assert not candidates([host("h", free=(4, 4))], req(4, isolate=True), CTX)
    assert candidates([host("h", free=(4, 5))], req(4, isolate=True), CTX)


def test_two_cell_guest_needs_two_distinct_nodes() -> None:
    r = req(4, numa_nodes=2)
    assert fit_nodes(host("h", free=(2, 2)).nodes, r) == (0, 1)
    assert fit_nodes(host("h", free=(6, 1)).nodes, r) is None
    assert fit_nodes(host("h", free=(6,)).nodes, r) is None


def test_best_fit_node_is_the_tightest_that_fits() -> None:
    assert fit_nodes(host("h", free=(7, 4, 5)).nodes, req(4)) == (1,)


def test_networks_not_needed_means_any_wiring_and_no_switch_needed() -> None:
    bare = host("bare", physnets=(), dataplane="unknown")
    assert candidates([bare], req(4, nets=()), CTX) == [bare]


def test_pack_prefers_busy_hosts_and_spread_idle_ones() -> None:
    hosts = [host("idle", free=(7, 7)), host("busy", free=(4, 0)), host("mid", free=(7, 0))]
    assert [h.name for h in rank(hosts, req(4), "pack")] == ["busy", "mid", "idle"]
    assert [h.name for h in rank(hosts, req(4), "spread")] == ["idle", "mid", "busy"]


def test_explanation_counts_hosts_per_class() -> None:
    hosts = (
        [host(f"full{i}", free=(3, 2)) for i in range(3)]
        + [host(f"red{i}", physnets=("red",)) for i in range(4)]
        + [host("down", heartbeat=NOW - 600)]
        + [host(f"nr{i}", verdict="not-ready") for i in range(2)]
    )
    text = explain(hosts, req(4), CTX)
    assert "of 10 hosts" in text
    assert "3 hosts wired to blue, none with 4 free RT pCPUs on one NUMA node" in text
    assert "4 hosts not wired to blue" in text
    assert "1 host down (no agent heartbeat for 60 s)" in text
    assert "2 hosts not RT-ready" in text
    assert text.endswith("use a smaller flavor")


def test_explanation_for_hugepages_and_for_an_empty_cloud() -> None:
    text = explain([host("h", pages=10)], req(4), CTX)
    assert "1 host wired to blue with the RT pCPUs, none with 512 free 2M hugepages" in text
    assert "no host is enrolled" in explain([], req(4), CTX)


def test_a_4k_guest_needs_ram_on_each_of_its_nodes_not_hugepages() -> None:
    small = req(4, numa_nodes=2, memory_mib=3002, page_size="4k")
    assert (small.pages_per_cell, small.mib_per_cell) == (0, 1501)  # per cell
    assert req(4).mib_per_cell == 0  # hugepage guests take pages, not node RAM
    assert fit_nodes(host("h", free=(2, 2), pages=0, mib=1501).nodes, small) == (0, 1)
    assert fit_nodes(host("h", free=(2, 2), pages=0, mib=1500).nodes, small) is None
    assert fit_nodes(host("h", free=(2, 2), pages=0, mib=0).nodes, small, memory=False)
    text = explain([host("h", free=(2, 2), mib=1000)], small, CTX)
    assert "1 host wired to blue with the RT pCPUs, none with 1501 MiB of RAM free for 4k " in text
    assert "(2 + 2 RT pCPUs on distinct NUMA nodes with 1501 MiB of RAM free for 4k" in text


def test_many_hosts_every_candidate_really_fits_and_every_reject_is_explained() -> None:
    rng = random.Random(7)
    hosts = [
        host(
            f"h{i:05d}",
            free=(rng.randint(0, 7), rng.randint(0, 7)),
            pages=rng.choice([0, 256, 4096]),
            physnets=tuple(rng.sample(["blue", "red", "green"], rng.randint(0, 3))),
            verdict=rng.choice(["ready"] * 9 + ["not-ready"]),
            heartbeat=rng.choice([NOW - 1, NOW - 30, NOW - 120]),
        )
        for i in range(2000)
    ]
    r = req(4, nets=("blue", "green"))
    ok = candidates(hosts, r, CTX)
    assert ok  # some fit
    for h in ok:
        assert {"blue", "green"} <= h.physnets
        assert NOW - (h.heartbeat_at or 0) <= 60
        assert any(n.rt_free >= 4 and n.pages_free(2048) >= 512 for n in h.nodes)
    rejected = [h for h in hosts if h not in ok]
    text = explain(rejected, r, CTX)
    total, _, clauses = text.split(": of ")[1].partition(", ")
    assert total == f"{len(rejected)} hosts"
    counted = sum(int(clause.split()[0]) for clause in clauses.split("; "))
    assert counted == len(rejected)
