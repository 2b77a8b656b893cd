"""Fixtures for the tuning engine tests: a Tuning bound to a fake root."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.tune.engine import Tuning
from rtkvm.tune.journal import Journal
from rtkvm.tune.profile import load_profile
from rtkvm.tune.simkernel import SimulatedHostFS, SimulatedProcessControl
from rtkvm.tune.system import RecordingRunner

MakeTuning = Callable[..., Tuning]

PLAN = PartitionPlan(
    housekeeping="0",
    rt_vcpu="1-2",
    dataplane="3",
    kernel_cmdline=("isolcpus=managed_irq,domain,1-3", "nohz_full=1-3", "rcu_nocbs=1-3"),
)


@pytest.fixture()
def make_tuning() -> MakeTuning:
    def make(
        root: Path,
        *,
        fs: HostFS | None = None,
        plan: PartitionPlan = PLAN,
        profile: str = "realtime-virtual-host",
        refuse: tuple[int, ...] = (),
        choices: dict[str, str] | None = None,
        only: tuple[str, ...] = (),
        runner: RecordingRunner | None = None,
        guest_hugepages: int | None = None,
    ) -> Tuning:
        fs = fs or SimulatedHostFS(root)
        return Tuning(
            fs=fs,
            profile=load_profile(profile),
            plan=plan,
            proc=SimulatedProcessControl(fs, refuse=refuse),
            runner=runner or RecordingRunner(),
            journal=Journal(fs),
            choices=choices or {},
            only=only,
            guest_hugepages=guest_hugepages,
        )

    return make
