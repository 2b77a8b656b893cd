"""Power actions end to end through the real API and libvirt's test driver: the user asks,
the agent carries it out step by step, the API shows the result and clears the task."""

from __future__ import annotations

from typing import Any

from rtkvm.agent.names import domain_name
from rtkvm.agent.power import PowerTasks
from rtkvm.api.testing import Cloud, expect
from rtkvm.guest.hypervisor import LibvirtHypervisor

from .conftest import MakeAgent, small_flavor
from .fakes import FakeHypervisor


def _running(hv: LibvirtHypervisor, instance_id: str) -> bool:
    return {d.uuid: d.running for d in hv.domains()}[instance_id]


def _ask(client: Any, vm: dict[str, Any], action: str, **extra: Any) -> None:
    body = {"action": action, **extra}
    expect(client.post(f"/v1/instances/{vm['id']}/action", json=body), 202)


def test_stop_start_and_reboots_on_libvirt(
    cloud: Cloud, make_agent: MakeAgent, libvirt_test: LibvirtHypervisor
) -> None:
    agent = make_agent("node1", libvirt_test)
    agent.register()
    agent.reconcile()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    agent.step()
    assert _running(libvirt_test, vm["id"])

    _ask(alice, vm, "stop")
    first = agent.step()  # the test driver powers off on the ACPI button at once
    if vm["id"] in first.powering:
        first = agent.step()
    assert first.powered[vm["id"]].state == "stopped"
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert (shown["state"], shown["task"]) == ("stopped", None)
    assert not _running(libvirt_test, vm["id"])
    assert agent.step().drifted == {}  # a stop asked through rtkvm is no drift

    _ask(alice, vm, "start")
    assert agent.step().powered[vm["id"]].state == "active"
    assert _running(libvirt_test, vm["id"])
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["state"] == "active"

    _ask(alice, vm, "reboot", hard=True)
    assert agent.step().powered[vm["id"]].state == "active"
    assert _running(libvirt_test, vm["id"])
    assert agent.stats().power_tasks == 3


def test_a_guest_deaf_to_the_power_button_is_powered_off_after_the_timeout(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    hv = FakeHypervisor()
    hv.obeys_acpi = False  # the probe image has no ACPI daemon
    agent = make_agent("node1", hv)
    now = [0.0]
    agent.power = PowerTasks(agent.executor, lambda: now[0], stop_timeout_s=30.0)
    agent.register()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    agent.step()

    _ask(alice, vm, "reboot")
    assert agent.step().powering == [vm["id"]]
    now[0] = 10.0
    assert agent.step().powering == [vm["id"]]  # still waiting for the guest
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert (shown["state"], shown["task"]) == ("active", "rebooting")
    now[0] = 31.0
    done = agent.step()
    assert done.powered[vm["id"]].state == "active"
    assert hv.powered_off == [domain_name(vm["id"])]
    assert hv.defined[domain_name(vm["id"])][1]  # started again
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["task"] is None
