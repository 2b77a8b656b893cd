"""Plugins one by one: what they plan on particular hosts, and their pure helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.tune.engine import Tuning
from rtkvm.tune.fakes import write_task, write_tuning_host
from rtkvm.tune.model import Status
from rtkvm.tune.plugins.base import glob_paths, same
from rtkvm.tune.plugins.cmdline import merged, missing_from, with_cmdline
from rtkvm.tune.plugins.irqbalance import with_banned
from rtkvm.tune.simkernel import SimulatedHostFS, SimulatedProcessControl
from rtkvm.tune.system import (
    parse_cpus_allowed,
    parse_proc_cgroup,
    parse_sched,
    parse_stat,
    read_tasks,
)

MakeTuning = Callable[..., Tuning]


@pytest.mark.parametrize(
    ("mode", "live", "desired", "expected"),
    [
        ("exact", "10\n", "10", True),
        ("exact", "1\t2\n", "1 2", True),
        ("exact", "1\n", "10", False),
        ("selected", "always madvise [never]\n", "never", True),
        ("selected", "always [madvise] never\n", "never", False),
        ("selected", "never", "never", True),
        ("mask", "00000000,00000001\n", "1", True),
        ("mask", "3\n", "1", False),
        ("mask", "zz\n", "1", False),
        ("cpulist", "1-2\n", "1,2", True),
        ("cpulist", "\n", "0", False),
    ],
)
def test_compare_modes(mode: str, live: str, desired: str, expected: bool) -> None:
    assert same(mode, live, desired) is expected


def test_glob_paths(tmp_path: Path) -> None:
    for n in (0, 1):
        d = tmp_path / f"sys/devices/system/machinecheck/machinecheck{n}"
        d.mkdir(parents=True)
        (d / "ignore_ce").write_text("0\n")
    fs = HostFS(tmp_path)
    assert glob_paths(fs, "/sys/devices/system/machinecheck/machinecheck*/ignore_ce") == [
        "/sys/devices/system/machinecheck/machinecheck0/ignore_ce",
        "/sys/devices/system/machinecheck/machinecheck1/ignore_ce",
    ]
    assert glob_paths(fs, "/sys/nothing*/x") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 'IRQBALANCE_BANNED_CPULIST="1-3"\n'),
        (
            'A=1\nIRQBALANCE_BANNED_CPULIST="7"\nB=2\n',
            'A=1\nIRQBALANCE_BANNED_CPULIST="1-3"\nB=2\n',
        ),
        ("A=1", 'A=1\n# rtkvm: keep IRQs off the isolated CPUs\nIRQBALANCE_BANNED_CPULIST="1-3"\n'),
    ],
)
def test_irqbalance_config_edit(text: str, expected: str) -> None:
    result = with_banned(text, CpuSet.parse("1-3"))
    assert result.endswith(expected)
    assert result.startswith(text.rstrip("\n").split("IRQBALANCE")[0])


def test_cmdline_merge_replaces_same_names_and_keeps_the_rest() -> None:
    current = "console=ttyS0 nohz_full=5 quiet"
    wanted = ["isolcpus=managed_irq,domain,1-3", "nohz-full=1-3"]
    assert (
        merged(current, wanted)
        == "console=ttyS0 nohz-full=1-3 quiet isolcpus=managed_irq,domain,1-3"
    )
    assert missing_from("ro nohz_full=1-3 isolcpus=managed_irq,domain,1-3", wanted) == []
    assert missing_from("ro nohz_full=1-2", wanted) == wanted
    grub = 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="a"\n'
    assert with_cmdline(grub, "a b") == 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="a b"\n'
    assert with_cmdline("X=1", "b") == 'X=1\nGRUB_CMDLINE_LINUX="b"\n'


def test_no_boot_loader_prints_the_arguments(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path, grub=False)
    tuning = make_tuning(tmp_path)
    change = next(c for c in tuning.changes() if c.setting == "cmdline:boot_loader")
    assert change.unsupported is not None
    assert (
        "by hand: isolcpus=managed_irq,domain,1-3 nohz_full=1-3 rcu_nocbs=1-3" in change.unsupported
    )
    result = tuning.apply()
    assert any("by hand" in n for n in result.notes)
    check = next(c for c in tuning.verify() if c.setting == "cmdline:boot_loader")
    assert check.status is Status.UNSUPPORTED


def test_boot_loader_keeps_other_grub_lines(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    make_tuning(tmp_path, only=("cmdline:*",)).apply()
    text = (tmp_path / "etc/default/grub").read_text()
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="quiet"' in text
    assert (
        'GRUB_CMDLINE_LINUX="console=ttyS0 isolcpus=managed_irq,domain,1-3 nohz_full=1-3 '
        'rcu_nocbs=1-3"' in text
    )


def test_cgroup_v2_isolated_partitions(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path, cgroup="v2")
    make_tuning(tmp_path, only=("cpuset:*",)).apply()
    cg = tmp_path / "sys/fs/cgroup"
    assert (cg / "cgroup.subtree_control").read_text() == "cpuset memory pids\n"
    assert (cg / "rtkvm-rt/cpuset.cpus").read_text() == "1-2"
    assert (cg / "rtkvm-rt/cpuset.cpus.partition").read_text() == "isolated"
    assert (cg / "rtkvm-dataplane/cpuset.cpus.partition").read_text() == "isolated"
    assert (cg / "rtkvm-housekeeping/cpuset.cpus.partition").read_text() == "member\n"
    # kernel threads stay in the v2 root; user processes move
    assert (tmp_path / "proc/2/cgroup").read_text().endswith("0::/\n")
    assert (tmp_path / "proc/300/cgroup").read_text().endswith("0::/rtkvm-housekeeping\n")


def test_cgroup_v1_like_partrt(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path, cgroup="v1")
    write_task(tmp_path, 600, "qemu-rt", cgroup={"cpuset": "/machine/vm1", "": "/"})
    make_tuning(tmp_path, only=("cpuset:*",)).apply()
    cg = tmp_path / "sys/fs/cgroup/cpuset"
    assert (cg / "cpuset.sched_load_balance").read_text() == "0"
    assert (cg / "rtkvm-rt/cpuset.sched_load_balance").read_text() == "0"
    assert (cg / "rtkvm-housekeeping/cpuset.mems").read_text() == "0"
    assert "1:cpuset:/rtkvm-housekeeping" in (tmp_path / "proc/2/cgroup").read_text()
    # per-CPU kernel threads and tasks another manager placed are left alone
    assert "1:cpuset:/\n" in (tmp_path / "proc/10/cgroup").read_text()
    assert "1:cpuset:/machine/vm1" in (tmp_path / "proc/600/cgroup").read_text()


def test_no_cpuset_controller_is_unsupported(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path, cgroup=None)
    checks = [c for c in make_tuning(tmp_path).verify() if c.setting.startswith("cpuset:")]
    assert checks[0].status is Status.UNSUPPORTED
    assert "no cpuset cgroup controller" in checks[0].note


def test_power_without_cpufreq_or_cpuidle(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path, cpufreq=False, cpuidle=False)
    checks = {c.setting: c for c in make_tuning(tmp_path).verify() if c.setting.startswith("power")}
    assert checks["power:governor"].status is Status.UNSUPPORTED
    assert "no cpufreq" in checks["power:governor"].note
    assert checks["power:idle"].status is Status.UNSUPPORTED


def test_power_only_touches_isolated_cpus_and_deep_states(
    tmp_path: Path, make_tuning: MakeTuning
) -> None:
    write_tuning_host(tmp_path)
    make_tuning(tmp_path, only=("power:*",)).apply()
    cpu = tmp_path / "sys/devices/system/cpu"
    assert (cpu / "cpu0/cpufreq/scaling_governor").read_text() == "powersave\n"
    assert (cpu / "cpu1/cpufreq/scaling_governor").read_text() == "performance"
    assert (cpu / "cpu1/cpuidle/state1/disable").read_text() == "0\n"  # C1: 2 us, allowed
    assert (cpu / "cpu1/cpuidle/state2/disable").read_text() == "1"  # C6: 133 us


def test_thread_priorities_and_rt_throttling_choice(
    tmp_path: Path, make_tuning: MakeTuning
) -> None:
    write_tuning_host(tmp_path)
    tuning = make_tuning(
        tmp_path, choices={"rt_throttling": "large"}, only=("thread:*", "sysctl:*rt_runtime*")
    )
    tuning.apply()
    assert (tmp_path / "proc/sys/kernel/sched_rt_runtime_us").read_text() == "999000"
    tasks = {t.comm: t.sched for t in read_tasks(HostFS(tmp_path))}
    assert tasks["ksoftirqd/1"] == "fifo:2"
    assert tasks["ktimers/3"] == "fifo:3"
    assert tasks["pmd-c03/id:9"] == "other:0"  # not the profile's: the data plane's
    assert tasks["sshd"] == "other:0"


def test_modprobe_file_and_status(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path, kvm_loaded=False)
    tuning = make_tuning(tmp_path, only=("modprobe:*",))
    before = {c.setting: c.status for c in tuning.verify()}
    assert before["modprobe:kvm.kvmclock_periodic_sync"] is Status.DRIFT
    tuning.apply()
    text = (tmp_path / "etc/modprobe.d/rtkvm.conf").read_text()
    assert "options kvm kvmclock_periodic_sync=0\n" in text
    assert "options kvm_intel ple_gap=0\n" in text
    after = {c.setting: c.status for c in make_tuning(tmp_path, only=("modprobe:*",)).verify()}
    assert after["modprobe:kvm.kvmclock_periodic_sync"] is Status.PENDING_REBOOT


def test_modprobe_dir_created_and_removed(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    (tmp_path / "etc/modprobe.d").rmdir()
    tuning = make_tuning(tmp_path, only=("modprobe:*",))
    tuning.apply()
    assert (tmp_path / "etc/modprobe.d/rtkvm.conf").is_file()
    from rtkvm.tune.engine import rollback
    from rtkvm.tune.journal import Journal
    from rtkvm.tune.system import RecordingRunner

    fs = SimulatedHostFS(tmp_path)
    rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert not (tmp_path / "etc/modprobe.d").exists()


def test_irqbalance_not_installed_is_unsupported(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path, irqbalance=False)
    check = next(c for c in make_tuning(tmp_path).verify() if c.setting == "irqbalance:banned")
    assert check.status is Status.UNSUPPORTED


def test_irqbalance_not_running_is_not_restarted(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path, irqbalance_running=False)
    from rtkvm.tune.system import RecordingRunner

    runner = RecordingRunner()
    make_tuning(tmp_path, runner=runner, only=("irqbalance:*",)).apply()
    assert runner.commands == []
    assert 'IRQBALANCE_BANNED_CPULIST="1-3"' in (tmp_path / "etc/default/irqbalance").read_text()


def test_empty_dataplane_creates_no_group(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    plan = PartitionPlan(housekeeping="0", rt_vcpu="1-3", dataplane="")
    make_tuning(tmp_path, plan=plan, only=("cpuset:*",)).apply()
    assert not (tmp_path / "sys/fs/cgroup/cpuset/rtkvm-dataplane").exists()
    assert (tmp_path / "sys/fs/cgroup/cpuset/rtkvm-rt/cpuset.cpus").read_text() == "1-3"


# -- /proc parsers and the fake process control -----------------------------------------


def test_parse_stat_with_odd_comm() -> None:
    fields = ["S"] + ["0"] * 49
    fields[6], fields[37], fields[38] = "2097152", "50", "1"
    comm, flags, prio, policy = parse_stat(f"7 (a) b (c)) {' '.join(fields)}")
    assert (comm, flags, prio, policy) == ("a) b (c)", 2097152, 50, 1)
    with pytest.raises(ValueError, match="fields"):
        parse_stat("7 (x) S 1 2")


def test_proc_cgroup_and_status_parsers() -> None:
    text = "12:cpuset:/rtkvm-rt\n3:cpu,cpuacct:/x\n0::/user.slice\n"
    assert parse_proc_cgroup(text, "cpuset") == "/rtkvm-rt"
    assert parse_proc_cgroup(text, "cpu") == "/x"
    assert parse_proc_cgroup(text, "") == "/user.slice"
    assert parse_proc_cgroup("1:memory:/\n", "cpuset") is None
    assert parse_cpus_allowed("Name:\tx\nCpus_allowed_list:\t0-3\n", "s") == CpuSet.parse("0-3")
    assert parse_sched("fifo:2") == (1, 2)


def test_fake_process_control_round_trip(tmp_path: Path) -> None:
    write_task(tmp_path, 50, "worker", cpus="0-3")
    write_task(tmp_path, 50, "worker-2", tid=51, cpus="0-3")
    fs = SimulatedHostFS(tmp_path)
    proc = SimulatedProcessControl(fs, refuse={99})
    proc.set_sched(51, 1, 7)
    proc.set_affinity(51, CpuSet.parse("2"))
    tasks = {t.tid: t for t in read_tasks(fs)}
    assert tasks[51].sched == "fifo:7" and tasks[51].cpus == CpuSet.parse("2")
    assert tasks[50].sched == "other:0"
    from rtkvm.errors import HostWriteError

    with pytest.raises(HostWriteError, match="No such process"):
        proc.set_sched(77, 1, 1)
    with pytest.raises(HostWriteError, match="Invalid argument"):
        proc.set_sched(99, 1, 1)


def test_affinity_moves_unbound_kernel_threads(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path)
    tuning = make_tuning(tmp_path, only=("affinity:*",))
    tuning.apply()
    tasks = {t.comm: t for t in read_tasks(HostFS(tmp_path))}
    assert tasks["kswapd0"].cpus == CpuSet.parse("0")
    assert tasks["rcuop/1"].cpus == CpuSet.parse("0")
    assert tasks["ksoftirqd/2"].cpus == CpuSet.parse("2")  # per-CPU: left alone
    assert tasks["sshd"].cpus == CpuSet.parse("0-3")  # no rule names it
    status = {c.setting: c.status for c in make_tuning(tmp_path, only=("affinity:*",)).verify()}
    assert status == {"affinity:rcuo*": Status.OK, "affinity:kswapd*": Status.OK}


def test_rollback_moves_new_tasks_out_of_a_group_first(
    tmp_path: Path, make_tuning: MakeTuning
) -> None:
    from rtkvm.tune.engine import rollback
    from rtkvm.tune.journal import Journal
    from rtkvm.tune.system import RecordingRunner

    write_tuning_host(tmp_path, cgroup="v1")
    make_tuning(tmp_path, only=("cpuset:*",)).apply()
    group = tmp_path / "sys/fs/cgroup/cpuset/rtkvm-housekeeping"
    # a process started after apply inherited the housekeeping group (not journaled)
    write_task(tmp_path, 700, "cron-job", cgroup={"cpuset": "/rtkvm-housekeeping", "": "/"})
    (group / "cgroup.procs").write_text("700\n")
    fs = SimulatedHostFS(tmp_path)
    result = rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert "1:cpuset:/\n" in (tmp_path / "proc/700/cgroup").read_text()
    # the simulated cgroupfs drops the control files with the directory, as the kernel does
    assert result.failed == [] and not group.exists()
    again = rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert again.restored == 0 and again.failed == []
