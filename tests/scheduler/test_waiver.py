"""RT waivers: an admin's waiver admits a host that is not RT-ready, never overrides the
other filters, ranks after every RT-ready candidate, and the explanation says how to waive."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rtkvm.domain.spec import RtGuestSpec
from rtkvm.scheduler.claim import _spread_ties
from rtkvm.scheduler.filters import Context, candidates, explain, first_failure, rank
from rtkvm.scheduler.snapshot import HostSnapshot, NodeSnapshot, Request

NOW = 10_000.0
CTX = Context(now=NOW, agent_timeout_s=60)
REQ = Request.from_spec(
    RtGuestSpec(name="rt4", vcpus=4, memory_mib=1024, realtime_mask="^0"), (("blue", "blue"),)
)


def host(
    name: str,
    free: tuple[int, ...] = (7, 7),
    *,
    verdict: str = "ready",
    waiver: str | None = None,
    heartbeat: float | None = NOW - 5,
    physnets: tuple[str, ...] = ("blue",),
    dataplane: str = "ready",
) -> HostSnapshot:
    nodes = tuple(NodeSnapshot(i, 7, f, ((2048, 4096), (1048576, 0))) for i, f in enumerate(free))
    return HostSnapshot(
        len(name), name, heartbeat, verdict, dataplane, frozenset(physnets), nodes, waiver
    )


def test_a_waived_host_that_is_not_ready_is_admitted() -> None:
    lab = host("lab", verdict="not-ready", waiver="demo on a laptop")
    assert lab.waived
    assert candidates([lab], REQ, CTX) == [lab]
    unknown = host("new", verdict="unknown", waiver="lab")
    assert candidates([unknown], REQ, CTX) == [unknown]


def test_a_ready_host_with_a_waiver_counts_as_ready() -> None:
    assert not host("h", waiver="lab").waived


@pytest.mark.parametrize(
    ("changes", "failure"),
    [
        ({"heartbeat": NOW - 600}, "agent_alive"),
        ({"heartbeat": None}, "agent_alive"),
        ({"free": (3, 3)}, "cpus_fit"),
        ({"physnets": ("red",)}, "networks_wired"),
        ({"dataplane": "stopped"}, "dataplane_ready"),
        ({"free": ()}, "registered"),
    ],
)
def test_the_waiver_overrides_no_other_filter(changes: dict[str, object], failure: str) -> None:
    lab = host("lab", verdict="not-ready", waiver="lab", **changes)  # type: ignore[arg-type]
    assert first_failure(lab, REQ, CTX) == failure
    assert candidates([lab], REQ, CTX) == []


@pytest.mark.parametrize("weigher", ["pack", "spread"])
def test_ready_hosts_are_preferred_over_waived_ones(weigher: str) -> None:
    busy_lab = host("a-lab", free=(4, 0), verdict="not-ready", waiver="lab")
    idle_lab = host("b-lab", free=(7, 7), verdict="not-ready", waiver="lab")
    ready_busy = host("z-ready", free=(5, 0))
    ready_idle = host("y-ready", free=(7, 6))
    ranked = rank([busy_lab, idle_lab, ready_busy, ready_idle], REQ, weigher)
    assert {h.name for h in ranked[:2]} == {"z-ready", "y-ready"}
    assert {h.name for h in ranked[2:]} == {"a-lab", "b-lab"}
    # with no ready host that fits, the waived ones are used
    full = replace(ready_busy, nodes=host("x", free=(1, 1)).nodes)
    assert [h.name for h in rank(candidates([busy_lab, full], REQ, CTX), REQ, weigher)] == ["a-lab"]


def test_spreading_ties_never_puts_a_waived_host_before_a_ready_one() -> None:
    ready = host("r", free=(7, 7))
    labs = [host(f"lab{i}", free=(7, 7), verdict="not-ready", waiver="lab") for i in range(3)]
    ranked = rank([ready, *labs], REQ, "pack")
    for i in range(50):
        assert _spread_ties(ranked, REQ, "pack", f"instance-{i}")[0].name == "r"


def test_not_ready_unwaived_hosts_are_refused_and_the_explanation_says_how_to_waive() -> None:
    hosts = [host("nr1", verdict="not-ready"), host("nr2", verdict="unknown")]
    assert candidates(hosts, REQ, CTX) == []
    text = explain(hosts, REQ, CTX)
    assert "2 hosts not RT-ready" in text
    assert "rtkvm cloud host set NAME --rt-waiver REASON" in text
    assert "gives up the latency guarantee" in text
