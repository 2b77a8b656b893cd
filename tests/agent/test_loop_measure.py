"""The agent's measurements through the real API for instances (measurements faked)."""

from __future__ import annotations

from typing import Any

from rtkvm.agent.loop import RESTARTED, Agent
from rtkvm.agent.measure import Finished
from rtkvm.agent.names import domain_name
from rtkvm.api.testing import Cloud, expect
from rtkvm.errors import CloudError
from rtkvm.wire.agent_client import AgentClient
from rtkvm.wire.guest import AgentInstance
from rtkvm.wire.measure import AgentMeasurement, MeasurementReport
from rtkvm.wire.node import Heartbeat
from rtkvm.wire.schemas import HostOut

from .conftest import MakeAgent, small_flavor
from .fakes import FakeHypervisor
from .measure_fakes import FakeRunner, measurement


class MeasuringClient(AgentClient):
    """The real API, with the measurements endpoints held here (the API may not have them)."""

    def __init__(self, inner: AgentClient) -> None:
        super().__init__(http=inner.http)
        self.queue: dict[str, dict[str, Any]] = {}
        self.reports: list[tuple[str, str, str | None]] = []
        self.heartbeats = 0
        self.unreachable = False

    def add(self, m: AgentMeasurement) -> str:
        self.queue[m.id] = m.model_dump(mode="json")
        return m.id

    def heartbeat(self, beat: Heartbeat) -> HostOut:
        self.heartbeats += 1
        return super().heartbeat(beat)

    def measurements(self) -> list[AgentMeasurement]:
        return [
            AgentMeasurement.model_validate(m)
            for m in self.queue.values()
            if m["state"] in ("queued", "running")
        ]

    def report_measurement(self, measurement_id: str, report: MeasurementReport) -> None:
        if self.unreachable:
            raise CloudError("cannot reach the rtkvm API at http://api: refused")
        body = report.model_dump(mode="json")
        self.reports.append((measurement_id, body["state"], body["fault"]))
        self.queue[measurement_id].update(state=body["state"], result=body["result"])


def _agent(
    make_agent: MakeAgent, hv: FakeHypervisor, runner: FakeRunner
) -> tuple[Agent, MeasuringClient]:
    agent = make_agent("node1", hv)
    client = MeasuringClient(agent.control)  # type: ignore[arg-type]
    agent.control = client
    agent.runner = runner
    agent.register()
    return agent, client


def _active(cloud: Cloud, agent: Agent, *names: str) -> list[AgentInstance]:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    for name in names:
        expect(alice.post("/v1/instances", json={"name": name, "flavor": "rt2"}), 201)
    agent.step()
    work = agent.work()
    assert [i.state for i in work] == ["active"] * len(names)
    return work


def test_a_queued_measurement_runs_in_the_background_while_heartbeats_go_on(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    hv, runner = FakeHypervisor(), FakeRunner()
    agent, client = _agent(make_agent, hv, runner)
    [vm] = _active(cloud, agent, "vm")
    mid = client.add(measurement("cyclictest", vm))

    assert agent.step().measuring == mid
    assert runner.started.wait(5)
    assert client.reports == [(mid, "running", None)]
    assert agent.busy() == {vm.id}
    beats = client.heartbeats
    second = agent.step()  # the measurement runs: nothing new is started, the host lives on
    assert second.measuring is None and runner.ran == [mid]
    assert client.heartbeats == beats + 1
    assert expect(cloud.admin.get("/v1/hosts/node1"), 200)["status"] == "up"

    runner.release.set()
    agent.wait_measurement(5)
    assert client.reports[-1] == (mid, "done", None)
    assert client.queue[mid]["result"] == {"latency": {"max_us": 42}}
    assert agent.busy() == frozenset()
    assert agent.step().measuring is None  # done, not run again
    assert runner.ran == [mid]


def test_busy_instances_are_not_lost_and_a_deletion_waits(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    hv, runner = FakeHypervisor(), FakeRunner()
    agent, client = _agent(make_agent, hv, runner)
    a, b = _active(cloud, agent, "a", "b")
    mid = client.add(measurement("rtt", a, b))
    agent.step()
    assert runner.started.wait(5)
    for inst in (a, b):  # the runner stopped both domains for the run
        uuid, _, xml = hv.defined[domain_name(inst.id)]
        hv.defined[domain_name(inst.id)] = (uuid, False, xml)
    alice = cloud.member("bob", "p1")
    expect(alice.delete(f"/v1/instances/{b.id}"), 204)

    done = agent.step()
    assert done.drifted == {}
    assert done.waiting == [b.id] and done.deleted == {}
    assert domain_name(b.id) in hv.defined
    assert expect(alice.get(f"/v1/instances/{a.id}"), 200)["state"] == "active"

    for inst in (a, b):  # the runner started them again
        hv.start(domain_name(inst.id))
    runner.release.set()
    agent.wait_measurement(5)
    assert client.reports[-1] == (mid, "done", None)
    done = agent.step()
    assert done.drifted == {}
    assert done.deleted[b.id].state == "deleted"
    assert domain_name(b.id) not in hv.defined


def test_a_report_the_api_did_not_get_is_sent_on_the_next_step(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    runner = FakeRunner(Finished("error", fault="rtt measurement failed: no link"))
    agent, client = _agent(make_agent, FakeHypervisor(), runner)
    [vm] = _active(cloud, agent, "vm")
    mid = client.add(measurement("cyclictest", vm))
    agent.step()
    client.unreachable = True
    runner.release.set()
    agent.wait_measurement(5)
    assert client.reports == [(mid, "running", None)]
    client.unreachable = False
    agent.step()
    assert client.reports == [
        (mid, "running", None),
        (mid, "error", "rtt measurement failed: no link"),
    ]
    agent.step()
    assert len(client.reports) == 2  # sent once


def test_a_measurement_of_an_instance_that_is_not_active_is_refused(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    runner = FakeRunner()
    agent, client = _agent(make_agent, FakeHypervisor(), runner)
    [vm] = _active(cloud, agent, "vm")
    expect(cloud.member("bob", "p1").delete(f"/v1/instances/{vm.id}"), 204)
    mid = client.add(measurement("cyclictest", vm))
    done = agent.step()
    assert done.measuring is None and runner.ran == []
    assert done.refused[mid].endswith("is deleting, not active: nothing was measured")
    assert client.reports == [(mid, "error", done.refused[mid])]


def test_a_measurement_running_at_start_up_is_reported_as_cut_short(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    hv, runner = FakeHypervisor(), FakeRunner()
    agent, client = _agent(make_agent, hv, runner)
    [vm] = _active(cloud, agent, "vm")
    m = measurement("cyclictest", vm)
    mid = client.add(m.model_copy(update={"state": "running"}))

    restarted = Agent(client, agent.inventory, agent.executor, runner=runner)
    restarted.register()
    restarted.reconcile()
    assert runner.recovered == [[vm.id]]  # its domain brought back
    assert client.reports == [(mid, "error", RESTARTED)]
    assert runner.ran == []
    restarted.step()
    assert len(client.reports) == 1 and runner.recovered == [[vm.id]]


def test_an_api_without_measurements_is_run_without_them(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    agent = make_agent("node1", FakeHypervisor())
    agent.runner = FakeRunner()
    agent.register()
    assert agent.measurements() == []  # HTTP 404 from an API without them, or none queued
    assert agent.step().measuring is None
