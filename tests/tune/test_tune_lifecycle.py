"""Apply, verify, rollback on fake roots: byte-identical undo, idempotence, crashes, refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rtkvm.errors import ApplyInterruptedError, HostWriteError, TuneError, WriteRefusedError
from rtkvm.hostfs import HostFS
from rtkvm.tune.engine import Tuning, rollback
from rtkvm.tune.fakes import (
    RejectingHostFS,
    differences,
    snapshot,
    write_tuning_host,
)
from rtkvm.tune.journal import Journal
from rtkvm.tune.model import Status
from rtkvm.tune.simkernel import SimulatedHostFS, SimulatedProcessControl
from rtkvm.tune.system import RecordingRunner, read_tasks

MakeTuning = Callable[..., Tuning]


def _rollback(root: Path, fs: HostFS | None = None) -> RecordingRunner:
    fs = fs or SimulatedHostFS(root)
    runner = RecordingRunner()
    result = rollback(fs, Journal(fs), SimulatedProcessControl(fs), runner)
    assert result.failed == []
    return runner


@pytest.mark.parametrize("cgroup", ["v1", "v2", None])
@pytest.mark.parametrize("grub", [True, False])
def test_apply_then_rollback_is_byte_identical(
    tmp_path: Path, make_tuning: MakeTuning, cgroup: str | None, grub: bool
) -> None:
    write_tuning_host(tmp_path, cgroup=cgroup, grub=grub, irqbalance_running=True, numa_nodes=2)
    before = snapshot(tmp_path)
    runner = RecordingRunner()
    result = make_tuning(tmp_path, runner=runner, guest_hugepages=16).apply()
    assert len(result.written) > 30
    changed = differences(before, snapshot(tmp_path))
    assert "proc/sys/kernel/sched_rt_runtime_us" in changed
    assert "sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages" in changed
    assert ("etc/default/grub" in changed) is grub
    assert ("update-grub",) in runner.commands if grub else ("update-grub",) not in runner.commands
    assert ("service", "irqbalance", "restart") in runner.commands
    undo = _rollback(tmp_path)
    assert differences(before, snapshot(tmp_path)) == []
    if grub:  # the boot loader is regenerated from the restored file
        assert undo.commands.index(("update-grub",)) >= 0


def test_apply_is_idempotent(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    make_tuning(tmp_path).apply()
    tuned = snapshot(tmp_path)
    entries = len(Journal(HostFS(tmp_path)).entries())
    runner = RecordingRunner()
    second = make_tuning(tmp_path, runner=runner).apply()
    assert second.written == []
    assert second.unchanged > 30
    assert runner.commands == []
    assert differences(tuned, snapshot(tmp_path)) == []
    assert len(Journal(HostFS(tmp_path)).entries()) == entries


def test_tune_without_apply_changes_nothing(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    before = snapshot(tmp_path)
    changes = make_tuning(tmp_path, fs=HostFS(tmp_path)).changes()
    assert sum(c.needed for c in changes) > 30
    assert differences(before, snapshot(tmp_path)) == []


def _count_writes(root: Path, make_tuning: MakeTuning) -> int:
    write_tuning_host(root)
    tuning = make_tuning(root)
    total = len(tuning.apply().written)
    return total


@pytest.mark.parametrize("budget", [0, 1, 2, 5, 9, 17, 23, 30, 41])
def test_crash_after_n_writes_then_rollback_restores_all(
    tmp_path: Path, make_tuning: MakeTuning, budget: int
) -> None:
    write_tuning_host(tmp_path, cgroup="v1")
    before = snapshot(tmp_path)
    with pytest.raises(ApplyInterruptedError, match=f"after {budget} writes"):
        make_tuning(tmp_path).apply(budget=budget)
    entries = Journal(HostFS(tmp_path)).entries()
    # the change that was about to happen is journaled too (journal first, then write)
    assert len(entries) >= budget + 1
    if budget:
        assert differences(before, snapshot(tmp_path)) != []
    _rollback(tmp_path)
    assert differences(before, snapshot(tmp_path)) == []


def test_crash_then_apply_again_then_rollback(tmp_path: Path, make_tuning: MakeTuning) -> None:
    """A second apply after a crash completes the work; one rollback still restores the start."""
    write_tuning_host(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(ApplyInterruptedError):
        make_tuning(tmp_path).apply(budget=7)
    assert make_tuning(tmp_path).apply().written
    _rollback(tmp_path)
    assert differences(before, snapshot(tmp_path)) == []


def test_verify_reports_each_status(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    tuning = make_tuning(tmp_path)
    before = {c.setting: c.status for c in tuning.verify()}
    assert before["sysctl:kernel.sched_rt_runtime_us"] is Status.DRIFT
    assert before["thread:rcuc/*"] is Status.UNSUPPORTED
    tuning.apply()
    checks = make_tuning(tmp_path).verify()
    status = {c.setting: c.status for c in checks}
    assert status["sysctl:kernel.sched_rt_runtime_us"] is Status.OK
    assert status["cpuset:housekeeping.tasks"] is Status.OK
    assert status["thread:ksoftirqd/*"] is Status.OK
    assert status["cmdline:boot_loader"] is Status.PENDING_REBOOT
    assert status["modprobe:kvm.kvmclock_periodic_sync"] is Status.PENDING_REBOOT
    assert not [c for c in checks if c.status is Status.DRIFT]
    rt = next(c for c in checks if c.setting == "sysctl:kernel.sched_rt_runtime_us")
    assert (rt.expected, rt.actual) == ("-1", "-1")
    # someone changes a setting behind rtkvm's back
    (tmp_path / "proc/sys/vm/stat_interval").write_text("1\n")
    drift = [c for c in make_tuning(tmp_path).verify() if c.status is Status.DRIFT]
    assert [(c.setting, c.expected, c.actual) for c in drift] == [
        ("sysctl:vm.stat_interval", "10", "1")
    ]


def test_rebooted_into_the_new_cmdline_is_ok(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    make_tuning(tmp_path).apply()
    (tmp_path / "proc/cmdline").write_text(
        "BOOT_IMAGE=/vmlinuz ro console=ttyS0 isolcpus=managed_irq,domain,1-3 nohz_full=1-3 "
        "rcu_nocbs=1-3\n"
    )
    (tmp_path / "sys/module/kvm/parameters/kvmclock_periodic_sync").write_text("N\n")
    status = {c.setting: c.status for c in make_tuning(tmp_path).verify()}
    assert status["cmdline:boot_loader"] is Status.OK
    assert status["modprobe:kvm.kvmclock_periodic_sync"] is Status.OK


def test_sysfs_file_that_rejects_the_write(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    before = snapshot(tmp_path)
    bad = "/sys/kernel/mm/transparent_hugepage/enabled"
    fs = RejectingHostFS(tmp_path, reject={bad})
    with pytest.raises(WriteRefusedError) as caught:
        make_tuning(tmp_path, fs=fs).apply()
    message = str(caught.value)
    assert bad in message and f"sysfs:{bad}" in message and "rollback" in message
    journal = Journal(HostFS(tmp_path))
    assert bad not in [e.target for e in journal.entries()]  # nothing journaled for what failed
    # everything written before it is journaled and undone
    changed = set(differences(before, snapshot(tmp_path)))
    journaled = {e.target.lstrip("/") for e in journal.entries()}
    assert {c for c in changed if not c.startswith(("run", "var"))} <= journaled
    _rollback(tmp_path)
    assert differences(before, snapshot(tmp_path)) == []


def test_irq_that_cannot_move_is_reported_not_fatal(
    tmp_path: Path, make_tuning: MakeTuning
) -> None:
    write_tuning_host(tmp_path, irqs=(0, 9, 24))
    before = snapshot(tmp_path)
    fs = RejectingHostFS(tmp_path, reject={"/proc/irq/0/smp_affinity"})
    result = make_tuning(tmp_path, fs=fs).apply()
    assert [r for r in result.refused if "/proc/irq/0/smp_affinity" in r]
    assert (tmp_path / "proc/irq/0/smp_affinity").read_text() == "f\n"
    assert (tmp_path / "proc/irq/9/smp_affinity").read_text() == "1"
    checks = {c.target: c for c in make_tuning(tmp_path).verify()}
    assert checks["/proc/irq/0/smp_affinity"].status is Status.UNSUPPORTED
    assert "refused" in checks["/proc/irq/0/smp_affinity"].note
    assert checks["/proc/irq/9/smp_affinity"].status is Status.OK
    _rollback(tmp_path)
    assert differences(before, snapshot(tmp_path)) == []


def test_task_that_cannot_move_is_reported(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    result = make_tuning(tmp_path, refuse=(2,)).apply()
    assert any("pid 2 (kthreadd)" in r and "Invalid argument" in r for r in result.refused)
    status = {c.setting: c.status for c in make_tuning(tmp_path, refuse=(2,)).verify()}
    assert status["cpuset:housekeeping.tasks"] is Status.OK


def test_read_only_host_gives_one_clear_message(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(TuneError, match=r"cannot create the tuning journal directory.*read-only"):
        make_tuning(tmp_path, fs=HostFS(tmp_path)).apply()
    assert differences(before, snapshot(tmp_path)) == []


def test_journal_location_unwritable_changes_nothing(
    tmp_path: Path, make_tuning: MakeTuning
) -> None:
    write_tuning_host(tmp_path)
    (tmp_path / "run").rmdir()
    (tmp_path / "run").write_text("not a directory")
    before = snapshot(tmp_path)
    with pytest.raises(TuneError, match="/run: exists and is not a directory"):
        make_tuning(tmp_path).apply()
    assert differences(before, snapshot(tmp_path)) == []


def test_only_selects_settings(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    before = snapshot(tmp_path)
    result = make_tuning(
        tmp_path, only=("sysctl:kernel.sched_rt_runtime_us", "sysfs:*ksm*")
    ).apply()
    assert sorted(c.target for c in result.written) == [
        "/proc/sys/kernel/sched_rt_runtime_us",
        "/sys/kernel/mm/ksm/run",
    ]
    changed = [
        p for p in differences(before, snapshot(tmp_path)) if not p.startswith(("run", "var"))
    ]
    assert changed == ["proc/sys/kernel/sched_rt_runtime_us", "sys/kernel/mm/ksm/run"]


def test_rollback_of_an_exited_thread_is_a_note(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    make_tuning(tmp_path).apply()
    import shutil

    shutil.rmtree(tmp_path / "proc/11")  # CPU 1 went offline: its ksoftirqd exited
    fs = SimulatedHostFS(tmp_path)
    result = rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert result.failed == []
    assert any("ksoftirqd/1" in n and "exited" in n for n in result.notes)


def test_rollback_failure_keeps_the_entry(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    make_tuning(tmp_path, only=("sysctl:*",)).apply()
    path = "/proc/sys/vm/stat_interval"
    fs = RejectingHostFS(tmp_path, reject={path})
    result = rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert len(result.failed) == 1 and path in result.failed[0]
    assert [e.target for e in Journal(fs).entries()] == [path]
    _rollback(tmp_path)
    assert Journal(HostFS(tmp_path)).entries() == []
    assert (tmp_path / "proc/sys/vm/stat_interval").read_text() == "1\n"


def test_the_journal_fingerprint_moves_with_each_apply_and_rollback(
    tmp_path: Path, make_tuning: MakeTuning
) -> None:
    """The node agent inspects its host again at once when this moves."""
    write_tuning_host(tmp_path)
    journal = Journal(HostFS(tmp_path))
    assert journal.fingerprint() == ""
    make_tuning(tmp_path, only=("sysctl:*",)).apply()
    applied = journal.fingerprint()
    assert '"event": "apply"' in applied
    make_tuning(tmp_path, only=("sysctl:*",)).apply()  # nothing left to do: nothing moved
    assert journal.fingerprint() == applied
    (tmp_path / "proc/sys/vm/stat_interval").write_text("1\n")  # set back by hand
    make_tuning(tmp_path, only=("sysctl:*",)).apply()
    again = journal.fingerprint()
    assert again != applied and '"event": "apply"' in again

    path = "/proc/sys/vm/stat_interval"
    fs = RejectingHostFS(tmp_path, reject={path})
    result = rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert result.failed and all(path in f for f in result.failed)  # both applies' entries
    partly = journal.fingerprint()
    assert partly != again and '"event": "rollback"' in partly
    _rollback(tmp_path)
    assert journal.fingerprint() == ""


def test_write_errors_from_hostfs_name_the_file(tmp_path: Path) -> None:
    fs = HostFS(tmp_path)
    with pytest.raises(HostWriteError, match="read-only"):
        fs.write_atomic("/etc/x", "y")


def test_rollback_leaves_a_reused_pid_alone(tmp_path: Path, make_tuning: MakeTuning) -> None:
    from rtkvm.tune.fakes import write_task

    write_tuning_host(tmp_path)
    make_tuning(tmp_path, only=("thread:ksoftirqd/*",)).apply()
    import shutil

    shutil.rmtree(tmp_path / "proc/11")  # ksoftirqd/1 is gone (CPU offlined) ...
    write_task(tmp_path, 11, "postgres", policy=1, priority=90)  # ... and its id reused
    fs = SimulatedHostFS(tmp_path)
    result = rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert result.failed == []
    assert any("now belongs to 'postgres'" in n for n in result.notes)
    tasks = {t.comm: t.sched for t in read_tasks(fs)}
    assert tasks["postgres"] == "fifo:90"  # not "restored" to ksoftirqd's original
    assert tasks["ksoftirqd/0"] == "other:0"


def test_plan_for_another_host_is_refused(tmp_path: Path, make_tuning: MakeTuning) -> None:
    from rtkvm.errors import InputError
    from rtkvm.host.partition import PartitionPlan

    write_tuning_host(tmp_path, cpus=4)
    before = snapshot(tmp_path)
    plan = PartitionPlan(housekeeping="0-1", rt_vcpu="2-5", dataplane="6-7")
    with pytest.raises(
        InputError, match=r"CPUs 4-7 that are not online on this host \(online: 0-3\)"
    ):
        make_tuning(tmp_path, plan=plan).apply()
    assert differences(before, snapshot(tmp_path)) == []


def test_after_a_reboot_rollback_restores_the_persistent_files(
    tmp_path: Path, make_tuning: MakeTuning
) -> None:
    write_tuning_host(tmp_path)
    persistent = ("etc/default/grub", "etc/default/irqbalance", "etc/modprobe.d")
    before = snapshot(tmp_path)
    make_tuning(tmp_path).apply()
    journal = Journal(HostFS(tmp_path))
    where = {e.target: e.persistent for e in journal.entries() if e.kind != "run"}
    assert where["/etc/default/grub"] and where["/etc/modprobe.d/rtkvm.conf"]
    assert where["/etc/default/irqbalance"]
    assert not where["/proc/sys/kernel/sched_rt_runtime_us"]
    assert (tmp_path / "var/lib/rtkvm/tune/header.json").is_file()
    # a reboot: /run is a fresh tmpfs and the kernel is back to its defaults
    import shutil

    shutil.rmtree(tmp_path / "run/rtkvm")
    undo = _rollback(tmp_path)
    assert ("update-grub",) in undo.commands
    after = snapshot(tmp_path)
    for path in persistent:
        assert [d for d in differences(before, after) if d.startswith(path)] == []
    assert not (tmp_path / "var/lib/rtkvm").exists()
