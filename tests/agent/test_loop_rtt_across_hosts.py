"""A round trip across hosts: two real agents, each running its half, coordinated only
through the real API (the halves themselves faked)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from rtkvm.agent.loop import Agent
from rtkvm.agent.measure import Finished
from rtkvm.api.testing import Cloud, expect
from rtkvm.errors import GuestError
from rtkvm.wire.guest import AgentInstance
from rtkvm.wire.measure import AgentMeasurement

from .conftest import MakeAgent, small_flavor
from .fakes import FakeHypervisor, FakeSwitch

RESULT = {"samples": 3, "min_us": 10.0, "max_us": 12.0, "percentiles": {"50.0": 11.0}}


class HalfRunner:
    """Runs one host's half: the client's ``run`` or the peer's ``serve``, and says what
    it saw of the other half."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.serving = threading.Event()
        self.partner_ended = threading.Event()
        self.serve_fails: str | None = None

    def run(self, m: AgentMeasurement) -> Finished:
        self.calls.append((m.role, m.server.name))
        assert m.partner_state == "serving"  # offered only once the peer serves
        return Finished("done", RESULT)

    def serve(
        self, m: AgentMeasurement, ready: Callable[[], None], finished: Callable[[], bool]
    ) -> Finished:
        assert m.peer is not None
        self.calls.append((m.role, m.peer.name))
        if self.serve_fails is not None:
            return Finished("error", fault=self.serve_fails)
        ready()
        self.serving.set()
        deadline = time.monotonic() + 10
        while not finished():
            if time.monotonic() > deadline:
                raise GuestError("the client's half never ended")
            time.sleep(0.02)
        self.partner_ended.set()
        return Finished("done", {"role": "server", "vcpus": {m.peer.name: "2-3"}})

    def recover(self, instances: Sequence[AgentInstance]) -> list[str]:
        return []


def _two_agents(
    cloud: Cloud, make_agent: MakeAgent
) -> tuple[tuple[Agent, HalfRunner], tuple[Agent, HalfRunner], dict[str, Any]]:
    cloud.network("blue", "blue", shared=True)
    small_flavor(cloud)
    agents = []
    for name in ("node1", "node2"):
        agent = make_agent(name, FakeHypervisor(), FakeSwitch(("blue",)))
        runner = HalfRunner()
        agent.runner = runner
        agent.register()
        agents.append((agent, runner))
    for name, host in (("a", "node1"), ("b", "node2")):
        body = {"name": name, "flavor": "rt2", "networks": ["blue"], "host": host}
        expect(cloud.admin.post("/v1/instances", json=body), 201)
    for agent, _ in agents:
        agent.step()
    body = {"kind": "rtt", "server": "a", "peer": "b", "rtt": {"seconds": 1}}
    m = expect(cloud.admin.post("/v1/measurements", json=body), 201)
    assert (m["host"], m["peer_host"]) == ("node1", "node2")
    return agents[0], agents[1], m


def test_the_peers_agent_serves_until_the_clients_agent_measured(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    (n1, client), (n2, server), m = _two_agents(cloud, make_agent)
    assert n1.step().measuring is None  # nothing to do before the peer serves
    assert n2.step().measuring == m["id"]
    assert server.serving.wait(5)
    assert n2.busy() == {m["peer"]}  # only the served instance is held on node2
    shown = expect(cloud.admin.get(f"/v1/measurements/{m['id']}"), 200)
    assert (shown["state"], shown["peer_state"]) == ("queued", "serving")

    assert n1.step().measuring == m["id"]
    n1.wait_measurement(5)
    assert server.partner_ended.wait(5)  # the serving half heard the client's end
    n2.wait_measurement(5)
    assert client.calls == [("client", "a")]
    assert server.calls == [("serve", "b")]
    shown = expect(cloud.admin.get(f"/v1/measurements/{m['id']}"), 200)
    assert (shown["state"], shown["result"]) == ("done", RESULT)
    assert (shown["peer_state"], shown["peer_result"]) == (
        "done",
        {"role": "server", "vcpus": {"b": "2-3"}},
    )
    assert n1.step().measuring is None and n2.step().measuring is None  # never run again


def test_a_peer_that_cannot_serve_fails_it_and_the_client_never_runs(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    (n1, client), (n2, server), m = _two_agents(cloud, make_agent)
    server.serve_fails = "serving b failed: sockperf server did not bind UDP 11111"
    n2.step()
    n2.wait_measurement(5)
    assert n1.step().measuring is None
    shown = expect(cloud.admin.get(f"/v1/measurements/{m['id']}"), 200)
    assert (shown["state"], shown["peer_state"]) == ("error", "error")
    assert shown["fault"] == (
        "the peer's host node2 could not serve: serving b failed: sockperf server did not "
        "bind UDP 11111"
    )
    assert client.calls == []


def test_a_serving_agent_that_restarts_closes_its_half_and_the_client_never_runs(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    (n1, client), (n2, server), m = _two_agents(cloud, make_agent)
    expect(
        n2.control.http.post(  # type: ignore[attr-defined]
            f"/v1/agent/measurements/{m['id']}/state", json={"state": "running"}
        ),
        200,
    )  # a previous process took it, then died
    n2.step()  # this process closes it as cut short
    shown = expect(cloud.admin.get(f"/v1/measurements/{m['id']}"), 200)
    assert (shown["state"], shown["peer_state"]) == ("error", "error")
    assert "the agent restarted during the measurement" in shown["peer_fault"]
    assert "could not serve" in shown["fault"]
    assert n1.step().measuring is None
    assert server.calls == [] and client.calls == []
