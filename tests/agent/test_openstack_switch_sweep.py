"""The OpenStack-mode agent puts rtkvm's switch right each round (Neutron plugs into it)."""

from __future__ import annotations

from pathlib import Path

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.sched import Sweep
from rtkvm.dataplane.threads import ThreadInfo
from rtkvm.errors import DataplaneError
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.tune.simkernel import SimulatedProcessControl

from .conftest import WIRING
from .test_openstack_ledger import WithoutNova

PMD = ThreadInfo(20, "pmd-c01/id:8", CpuSet([1]), "other", 0, 1)
CHILD = ThreadInfo(30, "pmd-c01/id:8", CpuSet([1]), "fifo", 1, 1)


class Switch:
    def __init__(self, result: Sweep | Exception) -> None:
        self.result = result
        self.sweeps = 0

    def sweep(self) -> Sweep:
        self.sweeps += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def _agent(fs: HostFS, plan: PartitionPlan, state: Path, switch: Switch) -> WithoutNova:
    return WithoutNova(
        None, plan, fs=fs, control=SimulatedProcessControl(fs), quirks=set(), state_dir=state,
        wiring=WIRING, provider="c1", switch=switch,
    )  # fmt: skip


def test_each_round_sweeps_the_switch_and_says_what_it_changed(
    fs: HostFS, plan: PartitionPlan, tmp_path: Path
) -> None:
    switch = Switch(Sweep((PMD,), (PMD,), (CHILD,)))
    agent = _agent(fs, plan, tmp_path, switch)
    done = agent.round()
    assert done.errors == [] and switch.sweeps == 1
    assert done.switch == [
        "PMD pmd-c01/id:8 (tid 20) set",
        "pmd-c01/id:8 (tid 30) moved from CPUs 1 to housekeeping",
    ]
    agent.round()
    assert switch.sweeps == 2


def test_a_switch_that_is_down_is_an_error_of_the_round_not_of_the_agent(
    fs: HostFS, plan: PartitionPlan, tmp_path: Path
) -> None:
    switch = Switch(DataplaneError("ovs-vswitchd of /run/x is not running"))
    done = _agent(fs, plan, tmp_path, switch).round()
    assert done.errors == ["switch: ovs-vswitchd of /run/x is not running"]
    assert done.report is not None  # the rest of the round went on
