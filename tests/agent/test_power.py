"""Power tasks advanced step by step, and power changes outside rtkvm (drift)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtkvm.agent.executor import BootConfig, Executor, HostView
from rtkvm.agent.names import domain_name
from rtkvm.agent.power import PowerTasks, drift
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.wire.guest import AgentInstance

from .conftest import boot_config
from .fakes import FakeHypervisor
from .test_reconcile import _dom, _inst


@pytest.fixture
def executor_parts(fs: HostFS, plan: PartitionPlan, tmp_path: Path) -> tuple[HostView, BootConfig]:
    return HostView(plan, read_topology(fs)), boot_config(tmp_path)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _tasks(executor: Executor, clock: _Clock) -> PowerTasks:
    return PowerTasks(executor, clock, stop_timeout_s=10.0)


def _defined(hv: FakeHypervisor, inst: AgentInstance, running: bool = True) -> str:
    name = domain_name(inst.id)
    hv.defined[name] = (inst.id, running, "<domain/>")
    return name


def test_a_stop_presses_the_button_and_waits_for_the_guest(
    executor_parts: tuple[HostView, BootConfig],
) -> None:
    hv, clock = FakeHypervisor(), _Clock()
    hv.obeys_acpi = False
    tasks = _tasks(Executor(hv, None, *executor_parts), clock)
    inst = _inst("active", task="stopping")
    name = _defined(hv, inst)

    assert tasks.advance(inst) is None  # button pressed, guest still up
    assert hv.shutdowns == [name] and hv.defined[name][1]
    clock.now += 5
    assert tasks.advance(inst) is None  # within the timeout: waits, does not press again
    assert hv.shutdowns == [name]
    hv.defined[name] = (inst.id, False, "<domain/>")  # the guest shut down by itself
    done = tasks.advance(inst)
    assert done is not None and (done.state, done.fault) == ("stopped", None)
    assert hv.powered_off == []  # never forced


def test_a_stop_powers_off_after_the_timeout_and_says_so(
    executor_parts: tuple[HostView, BootConfig],
) -> None:
    hv, clock = FakeHypervisor(), _Clock()
    hv.obeys_acpi = False
    tasks = _tasks(Executor(hv, None, *executor_parts), clock)
    inst = _inst("active", task="stopping")
    name = _defined(hv, inst)
    assert tasks.advance(inst) is None
    clock.now += 10.5
    done = tasks.advance(inst)
    assert done is not None and done.state == "stopped"
    assert done.fault is not None and "powered off after 10 s" in done.fault
    assert hv.powered_off == [name] and not hv.defined[name][1]


def test_a_soft_reboot_stops_then_starts(executor_parts: tuple[HostView, BootConfig]) -> None:
    hv, clock = FakeHypervisor(), _Clock()
    tasks = _tasks(Executor(hv, None, *executor_parts), clock)
    inst = _inst("active", task="rebooting")
    name = _defined(hv, inst)
    assert tasks.advance(inst) is None  # the guest obeys the button: off now
    assert not hv.defined[name][1]
    done = tasks.advance(inst)
    assert done is not None and done.state == "active", done.fault
    assert hv.defined[name][1]


def test_a_hard_reboot_powers_off_at_once_and_starts(
    executor_parts: tuple[HostView, BootConfig],
) -> None:
    hv, clock = FakeHypervisor(), _Clock()
    tasks = _tasks(Executor(hv, None, *executor_parts), clock)
    inst = _inst("active", task="rebooting-hard")
    name = _defined(hv, inst)
    done = tasks.advance(inst)
    assert done is not None and done.state == "active", done.fault
    assert hv.powered_off == [name] and hv.shutdowns == [] and hv.defined[name][1]


def test_a_hard_reboot_builds_a_missing_domain_again(
    executor_parts: tuple[HostView, BootConfig],
) -> None:
    hv, clock = FakeHypervisor(), _Clock()
    tasks = _tasks(Executor(hv, None, *executor_parts), clock)
    inst = _inst("error", task="rebooting-hard")
    done = tasks.advance(inst)
    assert done is not None and done.state == "active", done.fault
    assert hv.defined[domain_name(inst.id)][1]


def test_a_start_that_fails_is_an_error_with_the_reason(
    executor_parts: tuple[HostView, BootConfig],
) -> None:
    hv, clock = FakeHypervisor(), _Clock()
    tasks = _tasks(Executor(hv, None, *executor_parts), clock)
    inst = _inst("stopped", task="starting")
    _defined(hv, inst, running=False)
    hv.fail_start = "no memory"
    done = tasks.advance(inst)
    assert done is not None and done.state == "error"
    assert done.fault is not None and "no memory" in done.fault


def test_a_stop_of_a_vanished_domain_is_an_error(
    executor_parts: tuple[HostView, BootConfig],
) -> None:
    tasks = _tasks(Executor(FakeHypervisor(), None, *executor_parts), _Clock())
    done = tasks.advance(_inst("active", task="stopping"))
    assert done is not None and done.state == "error"
    assert done.fault is not None and "vanished" in done.fault


@pytest.mark.parametrize(
    ("state", "task", "domain", "expect"),
    [
        ("active", None, "running", None),
        ("active", None, "off", "stopped"),  # the guest powered itself off
        ("active", None, "none", "error"),  # vanished
        ("stopped", None, "off", None),
        ("stopped", None, "running", "active"),  # started outside rtkvm
        ("stopped", None, "none", "error"),
        ("active", "rebooting", "off", None),  # the task's business
        ("stopped", "starting", "off", None),
        ("building", None, "none", None),  # the create's business
        ("error", None, "off", None),
        ("deleting", None, "running", None),
    ],
)
def test_drift_table(state: str, task: str | None, domain: str, expect: str | None) -> None:
    inst = _inst(state, task=task)
    domains = [] if domain == "none" else [_dom(inst, running=domain == "running")]
    found = drift([inst], domains)
    assert [o.state for _, o in found] == ([expect] if expect else [])
    if expect == "stopped":
        assert "without a stop through rtkvm" in (found[0][1].fault or "")
