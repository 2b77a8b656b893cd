"""The one test that tunes the real host: a safe subset, applied and rolled back.

RT throttling, the default IRQ affinity and KSM are changed for real on
this machine, verified, and rolled back from a journal kept in a temporary
directory (never /run/rtkvm, so it cannot collide with a real tuning). The
finally block restores the originals even if rtkvm fails, and the test
asserts the host is exactly as before.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.tune.engine import Tuning, rollback
from rtkvm.tune.journal import Journal
from rtkvm.tune.model import Status
from rtkvm.tune.profile import load_profile
from rtkvm.tune.system import RealProcessControl, RecordingRunner

SAFE = {
    "sysctl:kernel.sched_rt_runtime_us": "/proc/sys/kernel/sched_rt_runtime_us",
    "irqs:default_smp_affinity": "/proc/irq/default_smp_affinity",
    "sysfs:/sys/kernel/mm/ksm/run": "/sys/kernel/mm/ksm/run",
}

pytestmark = pytest.mark.integration


def _read_all(fs: HostFS) -> dict[str, str]:
    return {path: fs.read(path) for path in SAFE.values()}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to write /proc and /sys")
def test_safe_subset_for_real(tmp_path: Path) -> None:
    reader = HostFS("/")
    missing = [p for p in SAFE.values() if not reader.is_file(p)]
    if missing:
        pytest.skip(f"this kernel lacks {', '.join(missing)}")
    cpus = os.sched_getaffinity(0)
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to make a plan")
    first = min(cpus)
    plan = PartitionPlan(housekeeping=str(first), rt_vcpu=str(max(cpus)), dataplane="")
    original = _read_all(reader)
    fs = HostFS("/", writable=True)
    journal = Journal(fs, f"{tmp_path}/volatile", f"{tmp_path}/persistent")
    runner = RecordingRunner()
    tuning = Tuning(
        fs=fs,
        profile=load_profile("realtime-virtual-host"),
        plan=plan,
        proc=RealProcessControl(fs),
        runner=runner,
        journal=journal,
        only=tuple(SAFE),
    )
    try:
        result = tuning.apply()
        assert result.refused == []
        live = _read_all(reader)
        assert live[SAFE["sysctl:kernel.sched_rt_runtime_us"]].strip() == "-1"
        assert live[SAFE["sysfs:/sys/kernel/mm/ksm/run"]].strip() == "2"
        assert int(live[SAFE["irqs:default_smp_affinity"]].replace(",", ""), 16) == 1 << first
        checks = tuning.verify()
        assert {c.setting: c.status for c in checks} == dict.fromkeys(SAFE, Status.OK)
        assert (
            len(result.written)
            == len(journal.entries())
            == sum(original[p] != live[p] for p in SAFE.values())
        )
        undone = rollback(fs, journal, RealProcessControl(fs), runner)
        assert undone.failed == []
        assert runner.commands == []
    finally:
        for path, text in original.items():
            if reader.read(path) != text:
                fs.write(path, text)
    assert _read_all(reader) == original
    assert not any(tmp_path.iterdir())  # the journal cleaned up after itself
