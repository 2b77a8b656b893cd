"""Reconciliation: adopt expected domains, report unknown ones, mark vanished ones."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from rtkvm.agent.executor import Executor, Outcome
from rtkvm.agent.loop import Agent
from rtkvm.agent.names import domain_name, guest_id
from rtkvm.agent.reconcile import compare
from rtkvm.api.testing import Cloud, expect
from rtkvm.guest.hypervisor import DomainState, LibvirtHypervisor
from rtkvm.wire.guest import AgentInstance

from .conftest import MakeAgent, small_flavor
from .fakes import FakeHypervisor, FakeSwitch
from .measure_fakes import placement_doc


def _inst(state: str, **fields: Any) -> AgentInstance:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": "vm",
        "project": "p1",
        "flavor": "rt2",
        "state": state,
        "fault": None,
        "host": "node1",
        "rt_cores": 2,
        "vcpu_pins": [[0, 2], [1, 3]],
        "emulator_cpus": "2",
        "cell_nodes": [0],
        "networks": [],
        "created_at": 1.0,
        "updated_at": 1.0,
        "spec": {"vcpus": 2, "memory_mib": 512, "realtime_mask": "^0"},
    }
    body.update(fields)
    body.setdefault("placement", placement_doc(body))
    return AgentInstance.model_validate(body)


def _dom(inst: AgentInstance | None, running: bool = True) -> DomainState:
    ident = inst.id if inst else str(uuid.uuid4())
    return DomainState(domain_name(ident), ident, running)


@pytest.mark.parametrize(
    ("state", "has_domain", "expect_adopt", "expect_vanished"),
    [
        ("active", True, True, False),
        ("building", True, True, False),
        ("error", True, True, False),
        ("deleting", True, False, False),  # the loop deletes it
        ("active", False, False, True),
        ("building", False, False, False),  # the loop creates it
        ("error", False, False, False),  # already reported
        ("deleting", False, False, False),
    ],
)
def test_compare_table(
    state: str, has_domain: bool, expect_adopt: bool, expect_vanished: bool
) -> None:
    inst = _inst(state)
    found = compare([inst], [_dom(inst)] if has_domain else [], [])
    assert [i.id for i, _ in found.adopt] == ([inst.id] if expect_adopt else [])
    assert [i.id for i in found.vanished] == ([inst.id] if expect_vanished else [])
    assert found.unknown_domains == ()


def test_compare_reports_unknown_domains_and_ports() -> None:
    mine = _inst("active", networks=[{"name": "blue", "physnet": "blue", "vlan": None}])
    stranger = _dom(None, running=True)
    ports = {(guest_id(mine.id), 0), ("a" * 32, 1)}
    found = compare([mine], [_dom(mine), stranger], ports)
    assert found.unknown_domains == (stranger,)
    assert found.unknown_ports == (("a" * 32, 1),)
    assert found.summary() == "1 adopted, 0 vanished, 1 unknown domains, 1 unknown switch ports"


def _one_instance(cloud: Cloud, networks: list[str] | None = None) -> dict[str, Any]:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    body = {"name": "vm", "flavor": "rt2", "networks": networks or []}
    return expect(alice.post("/v1/instances", json=body), 201)  # type: ignore[no-any-return]


def test_restart_adopts_a_stopped_domain_and_replugs_it(
    cloud: Cloud, make_agent: MakeAgent, switch: FakeSwitch
) -> None:
    hv = FakeHypervisor()
    first = make_agent("node1", hv, switch)
    first.register()
    cloud.network("blue", "blue", shared=True)
    vm = _one_instance(cloud, ["blue"])
    [work] = first.work()
    # the first agent died after defining the domain, before reporting; the guest stopped
    xml = first.executor.design_xml(work, [])
    hv.define(xml)
    hv.defined[domain_name(vm["id"])] = (vm["id"], False, xml)
    switch.plugged.clear()
    # a restarted process: same token, fresh executor and agent
    executor = Executor(hv, switch, first.executor.host, first.executor.boot)
    second = Agent(first.control, first.inventory, executor, ports=switch.ports)
    found = second.reconcile()
    assert [i.id for i, _ in found.adopt] == [vm["id"]]
    assert hv.defined[domain_name(vm["id"])][1] is True  # started again
    assert switch.plugged == {(guest_id(vm["id"]), 0): "blue"}
    assert expect(cloud.admin.get(f"/v1/instances/{vm['id']}"), 200)["state"] == "active"
    assert second.step().created == {}  # adopted, not created twice


def test_unknown_running_domain_and_port_are_reported_never_deleted(
    cloud: Cloud, make_agent: MakeAgent, libvirt_test: LibvirtHypervisor, switch: FakeSwitch
) -> None:
    agent = make_agent("node1", libvirt_test, switch)
    agent.register()
    vm = _one_instance(cloud)
    [work] = agent.work()
    stranger_id = str(uuid.uuid4())
    xml = agent.executor.design_xml(work.model_copy(update={"id": stranger_id}), [])
    libvirt_test.define(xml, start=True)  # an rtkvm guest no instance of this host explains
    switch.plugged[("b" * 32, 0)] = "blue"
    found = agent.reconcile()
    assert [d.uuid for d in found.unknown_domains] == [stranger_id]
    assert found.unknown_ports == (("b" * 32, 0),)
    said_domain, said_port = agent.unknown
    assert (said_domain.kind, said_domain.uuid, said_domain.running) == (
        "domain",
        stranger_id,
        True,
    )
    assert said_domain.verdict == "unknown"
    assert f"rtkvm guest delete {domain_name(stranger_id)}" in said_domain.hint
    assert (said_port.kind, said_port.name, said_port.verdict) == (
        "port",
        f"vhu-{'b' * 32}-0",
        "unknown",
    )
    assert f"ovs-vsctl del-port vhu-{'b' * 32}-0" in said_port.hint
    agent.step()
    agent.step()
    running = {d.uuid: d.running for d in libvirt_test.domains()}
    assert running[stranger_id] is True  # still there, still running
    assert running[vm["id"]] is True  # and the expected one was created next to it
    assert ("b" * 32, 0) in switch.plugged


def test_vanished_domain_marks_the_instance_error_and_keeps_its_claim(
    cloud: Cloud, make_agent: MakeAgent, libvirt_test: LibvirtHypervisor
) -> None:
    agent = make_agent("node1", libvirt_test)
    agent.register()
    vm = _one_instance(cloud)
    assert agent.step().created[vm["id"]].state == "active"
    libvirt_test.remove(domain_name(vm["id"]))  # someone removed it behind the agent's back
    found = agent.reconcile()
    assert [i.id for i in found.vanished] == [vm["id"]]
    shown = expect(cloud.admin.get(f"/v1/instances/{vm['id']}"), 200)
    assert shown["state"] == "error"
    assert "vanished" in shown["fault"]
    assert expect(cloud.admin.get("/v1/projects/p1"), 200)["rt_cores_used"] == 2
    assert agent.step().created == {}  # not silently re-created
    assert vm["id"] not in {d.uuid for d in libvirt_test.domains()}


def test_the_api_explains_leftovers_and_copies_of_other_hosts_guests(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    hv1, hv2 = FakeHypervisor(), FakeHypervisor()
    one, two = make_agent("node1", hv1), make_agent("node2", hv2)
    one.register()
    two.register()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    a = expect(alice.post("/v1/instances", json={"name": "a", "flavor": "rt2"}), 201)
    b = expect(alice.post("/v1/instances", json={"name": "b", "flavor": "rt2"}), 201)
    owner = {"node1": one, "node2": two}
    owner[a["host"]].step()
    owner[b["host"]].step()
    # instance a is deleted but its domain is left on its host; b's domain is copied
    # onto the other host (e.g. restored from a backup there)
    expect(alice.delete(f"/v1/instances/{a['id']}"), 204)
    a_agent = owner[a["host"]]
    a_agent.report(_work(a_agent, a["id"]), Outcome("deleted"))
    b_other = two if b["host"] == "node1" else one
    b_xml = owner[b["host"]].executor.design_xml(_work(owner[b["host"]], b["id"]), [])
    assert isinstance(b_other.executor.hypervisor, FakeHypervisor)
    b_other.executor.hypervisor.define(b_xml, start=True)
    verdicts = {}
    for agent in (one, two):
        agent.reconcile()
        verdicts.update({v.uuid: v.verdict for v in agent.unknown})
    assert verdicts == {a["id"]: "deleted", b["id"]: "other-host"}
    assert domain_name(a["id"]) in {d.name for d in a_agent.executor.hypervisor.domains()}
    assert expect(alice.get(f"/v1/instances/{b['id']}"), 200)["state"] == "active"


def _work(agent: Agent, instance_id: str) -> AgentInstance:
    return next(i for i in agent.work() if i.id == instance_id)


def test_only_agents_may_ask_about_unknown_domains(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    body = {"domains": [{"name": "x", "uuid": str(uuid.uuid4()), "running": True}]}
    assert alice.post("/v1/agent/unknown", json=body).status_code == 403
    assert cloud.client(None).post("/v1/agent/unknown", json=body).status_code == 401


def test_a_port_left_by_a_deleted_instance_is_explained(
    cloud: Cloud, make_agent: MakeAgent, switch: FakeSwitch
) -> None:
    agent = make_agent("node1", FakeHypervisor(), switch)
    agent.register()
    cloud.network("blue", "blue", shared=True)
    vm = _one_instance(cloud, ["blue"])
    agent.step()
    plugged = dict(switch.plugged)
    expect(cloud.admin.delete(f"/v1/instances/{vm['id']}"), 204)
    agent.step()
    switch.plugged.update(plugged)  # an unplug that did not happen on the switch
    found = agent.reconcile()
    assert found.unknown_ports == ((guest_id(vm["id"]), 0),)
    [said] = agent.unknown
    assert (said.kind, said.uuid, said.verdict) == ("port", vm["id"], "deleted")
    assert switch.plugged == plugged  # reported, not removed
