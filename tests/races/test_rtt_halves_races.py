"""The two halves of a round trip across hosts, reported at once by two hosts' agents to
two API processes on one database (PostgreSQL and SQLite): each report acts on what the
other left, never on a stale row."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx

from .conftest import ADMIN, Twins, at_once, register_host, setup_site
from .test_state_races import _check

TRIALS = 10
RESULT = {"samples": 3, "min_us": 10.0, "max_us": 12.0, "percentiles": {"50.0": 11.0}}


def _server(admin: httpx.Client, agent: httpx.Client, name: str, host: str) -> str:
    body = {"name": name, "flavor": "rt2", "networks": ["blue"], "host": host}
    made = admin.post("/v1/instances", json=body)
    assert made.status_code == 201, made.text
    vid = str(made.json()["id"])
    done = agent.post(f"/v1/agent/instances/{vid}/state", json={"state": "active"})
    assert done.status_code == 200, done.text
    return vid


def _state(client: httpx.Client, mid: str, state: str, **extra: Any) -> httpx.Response:
    return client.post(f"/v1/agent/measurements/{mid}/state", json={"state": state, **extra})


def _pair(twins: Twins) -> tuple[str, str]:
    """Client a on node1, peer b on node2; the agents' tokens."""
    site = setup_site(twins)
    node2 = register_host(twins, "node2")
    twins.admin(twins.a).create_network({"name": "blue", "physnet": "blue", "shared": True})
    with (
        twins.http(twins.a, ADMIN) as admin,
        twins.http(twins.a, site.agent) as n1,
        twins.http(twins.a, node2) as n2,
    ):
        _server(admin, n1, "a", "node1")
        _server(admin, n2, "b", "node2")
    return site.agent, node2


def _queue(twins: Twins) -> str:
    with twins.http(twins.a, ADMIN) as admin:
        made = admin.post("/v1/measurements", json={"kind": "rtt", "server": "a", "peer": "b"})
        assert made.status_code == 201, made.text
        assert made.json()["peer_host"] == "node2"
        return str(made.json()["id"])


def _show(twins: Twins, mid: str) -> dict[str, Any]:
    return twins.admin(twins.b).measurement(mid).model_dump()


def test_a_client_that_ends_as_the_peer_starts_never_leaves_a_half_behind(twins: Twins) -> None:
    """The client's half fails (its instance is not active) while the peer's host takes its
    half: either the peer started first (and holds until it hears the end) or the client's
    end closed the peer's half first (and its start is refused); never a half left queued."""
    node1, node2 = _pair(twins)
    outcomes: set[tuple[int, int]] = set()
    with twins.http(twins.a, node1) as n1, twins.http(twins.b, node2) as n2:
        for _ in range(TRIALS):
            mid = _queue(twins)
            ended, started = at_once(
                partial(_state, n1, mid, "error", fault="instance a is stopped"),
                partial(_state, n2, mid, "running"),
            )
            assert ended.status_code == 200, ended.text
            shown = _show(twins, mid)
            assert shown["state"] == "error"
            if started.status_code == 200:
                assert shown["peer_state"] == "running"
                [serve] = n2.get("/v1/agent/measurements").json()
                assert (serve["role"], serve["partner_state"]) == ("serve", "error")
                assert _state(n2, mid, "error", fault="the client's half ended").status_code == 200
            else:
                assert started.status_code == 409, started.text
                assert (shown["peer_state"], shown["peer_fault"]) == (
                    "error",
                    "not started: the client's half ended first",
                )
            outcomes.add((ended.status_code, started.status_code))
            assert n2.get("/v1/agent/measurements").json() == []
    print(f"\nclient end vs peer start, {TRIALS} trials: outcomes {sorted(outcomes)}")
    _check(twins)


def test_both_halves_done_at_once_keep_both_results(twins: Twins) -> None:
    node1, node2 = _pair(twins)
    with twins.http(twins.a, node1) as n1, twins.http(twins.b, node2) as n2:
        for trial in range(TRIALS):
            mid = _queue(twins)
            for client, state in ((n2, "running"), (n2, "serving"), (n1, "running")):
                assert _state(client, mid, state).status_code == 200
            served = {"role": "server", "trial": trial}
            answers = at_once(
                partial(_state, n1, mid, "done", result=RESULT),
                partial(_state, n2, mid, "done", result=served),
            )
            assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
            shown = _show(twins, mid)
            assert (shown["state"], shown["result"]) == ("done", RESULT)
            assert (shown["peer_state"], shown["peer_result"]) == ("done", served)
    _check(twins)


def test_a_peer_that_fails_as_the_client_starts_is_one_or_the_other(twins: Twins) -> None:
    """The serving half fails while the client's half starts: either the client started
    (and fails on its own, the peer's fault kept) or the measurement failed with the peer's
    fault first (and the start is refused); never a running client with nobody serving it
    unnoticed."""
    node1, node2 = _pair(twins)
    outcomes: set[tuple[int, int]] = set()
    with twins.http(twins.a, node1) as n1, twins.http(twins.b, node2) as n2:
        for _ in range(TRIALS):
            mid = _queue(twins)
            assert _state(n2, mid, "running").status_code == 200
            assert _state(n2, mid, "serving").status_code == 200
            started, failed = at_once(
                partial(_state, n1, mid, "running"),
                partial(_state, n2, mid, "error", fault="the probe b stopped"),
            )
            assert failed.status_code == 200, failed.text
            shown = _show(twins, mid)
            assert (shown["peer_state"], shown["peer_fault"]) == ("error", "the probe b stopped")
            if started.status_code == 200:
                assert shown["state"] == "running"
                assert _state(n1, mid, "error", fault="no answer").status_code == 200
            else:
                assert started.status_code == 409, started.text
                assert shown["state"] == "error"
                fault = "the peer's host node2 could not serve: the probe b stopped"
                assert shown["fault"] == fault
            outcomes.add((started.status_code, failed.status_code))
    print(f"\nclient start vs peer failure, {TRIALS} trials: outcomes {sorted(outcomes)}")
    _check(twins)
