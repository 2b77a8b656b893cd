"""The snapshot yardstick of the whole-profile integration test, on a fake tree.

It must see a changed knob, config file, cgroup, membership and thread, skip
counters and threads that came and went, and repair what it can write.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtkvm.testing import hostsnapshot


def _stat(pid: int, comm: str, start: int, prio: int = 0, policy: int = 0) -> str:
    fields = ["S"] + ["0"] * 50
    fields[19] = str(start)
    fields[37], fields[38] = str(prio), str(policy)
    return f"{pid} ({comm}) {' '.join(fields)}\n"


def _tree(root: Path) -> None:
    def put(path: str, text: str, mode: int = 0o644) -> None:
        file = root / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
        file.chmod(mode)

    put("/proc/sys/kernel/sched_rt_runtime_us", "950000\n")
    put("/proc/sys/kernel/ns_last_pid", "100\n")
    put("/proc/sys/kernel/tainted", "0\n", 0o444)
    put("/proc/irq/24/smp_affinity", "3\n")
    put("/sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n")
    put("/proc/mounts", "cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0\n")
    put("/sys/fs/cgroup/cpuset/cpuset.cpus", "0-1\n")
    put("/sys/fs/cgroup/cpuset/cpuacct.usage", "5\n")
    put("/sys/fs/cgroup/cpuset/cgroup.procs", "1\n")
    put("/proc/1/stat", _stat(1, "init", 7))
    put("/proc/1/cgroup", "4:cpuset:/\n")
    put("/proc/1/task/1/stat", _stat(1, "init", 7))
    put("/proc/1/task/1/status", "Name:\tinit\nCpus_allowed_list:\t0-1\n")


def test_a_snapshot_sees_knobs_cgroups_members_and_threads_but_not_counters(
    tmp_path: Path,
) -> None:
    _tree(tmp_path)
    snap = hostsnapshot.take(str(tmp_path))
    assert snap.knobs == {
        "/proc/sys/kernel/sched_rt_runtime_us": "950000\n",
        "/proc/irq/24/smp_affinity": "3\n",
        "/sys/kernel/mm/transparent_hugepage/enabled": "always [madvise] never\n",
    }
    assert snap.cgroups == {"/sys/fs/cgroup/cpuset": {"cpuset.cpus": "0-1\n"}}
    assert snap.members == {(1, 7): {"cpuset": "/"}}
    assert snap.threads[(1, 7)] == hostsnapshot.Thread("init", 0, 0, "0-1")
    assert hostsnapshot.differences(snap, hostsnapshot.take(str(tmp_path))) == []


def test_differences_name_each_change_and_skip_threads_that_came_and_went(
    tmp_path: Path,
) -> None:
    _tree(tmp_path)
    before = hostsnapshot.take(str(tmp_path))
    (tmp_path / "proc/sys/kernel/sched_rt_runtime_us").write_text("-1\n")
    (tmp_path / "proc/sys/kernel/ns_last_pid").write_text("200\n")
    (tmp_path / "sys/fs/cgroup/cpuset/rtkvm-rt").mkdir()
    (tmp_path / "proc/1/cgroup").write_text("4:cpuset:/rtkvm-rt\n")
    (tmp_path / "proc/1/task/1/stat").write_text(_stat(1, "init", 7, prio=2, policy=1))
    (tmp_path / "proc/2/task/2").mkdir(parents=True)  # a thread that came
    (tmp_path / "proc/2/stat").write_text(_stat(2, "kworker", 9))
    (tmp_path / "proc/2/task/2/stat").write_text(_stat(2, "kworker", 9, policy=1))
    (tmp_path / "proc/2/task/2/status").write_text("Cpus_allowed_list:\t1\n")
    (tmp_path / "etc/modprobe.d").mkdir(parents=True)
    (tmp_path / "etc/modprobe.d/rtkvm.conf").write_text("options kvm x=1\n")
    after = hostsnapshot.take(str(tmp_path))
    assert hostsnapshot.differences(before, after) == [
        "knob /proc/sys/kernel/sched_rt_runtime_us: '950000' -> '-1'",
        "config /etc/modprobe.d/rtkvm.conf: (absent) -> 'options kvm x=1'",
        "cgroup /sys/fs/cgroup/cpuset/rtkvm-rt: created",
        "process 1 in cpuset: / -> /rtkvm-rt",
        "thread 1 (init): policy 0:0 cpus 0-1 -> policy 1:2 cpus 0-1",
    ]


def test_repair_puts_files_and_cgroups_back_and_says_what_it_did(tmp_path: Path) -> None:
    _tree(tmp_path)
    before = hostsnapshot.take(str(tmp_path))
    (tmp_path / "sys/kernel/mm/transparent_hugepage/enabled").write_text("never\n")
    (tmp_path / "sys/fs/cgroup/cpuset/rtkvm-rt").mkdir()
    (tmp_path / "etc/modprobe.d").mkdir(parents=True)
    (tmp_path / "etc/modprobe.d/rtkvm.conf").write_text("options kvm x=1\n")
    repairs = hostsnapshot.repair(before, str(tmp_path), syscalls=False)
    assert sorted(repairs) == [
        "cgroup /sys/fs/cgroup/cpuset/rtkvm-rt removed",
        "config /etc/modprobe.d/rtkvm.conf removed",
        "knob /sys/kernel/mm/transparent_hugepage/enabled = 'madvise'",
    ]
    # a selector file is written its chosen word, as the kernel takes it
    assert (tmp_path / "sys/kernel/mm/transparent_hugepage/enabled").read_text() == "madvise"
    assert not (tmp_path / "sys/fs/cgroup/cpuset/rtkvm-rt").exists()
    # the kernel shows the word in its choices again; a plain file cannot
    (tmp_path / "sys/kernel/mm/transparent_hugepage/enabled").write_text("always [madvise] never\n")
    assert hostsnapshot.repair(before, str(tmp_path), syscalls=False) == []


def test_a_repair_that_fails_is_listed_with_its_error(tmp_path: Path) -> None:
    _tree(tmp_path)
    before = hostsnapshot.take(str(tmp_path))
    knob = tmp_path / "proc/sys/kernel/sched_rt_runtime_us"
    knob.write_text("-1\n")
    knob.chmod(0o644)
    os.chmod(knob.parent, 0o555)
    try:
        repairs = hostsnapshot.repair(before, str(tmp_path), syscalls=False)
    finally:
        os.chmod(knob.parent, 0o755)
    # root may write anyway; either it was repaired or the failure is named
    assert repairs in (
        ["knob /proc/sys/kernel/sched_rt_runtime_us = '950000'"],
        ["knob /proc/sys/kernel/sched_rt_runtime_us = '950000': FAILED (Permission denied)"],
    )


def test_a_workqueue_worker_s_cpus_are_left_to_the_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    (tmp_path / "proc/40/task/40").mkdir(parents=True)
    (tmp_path / "proc/40/stat").write_text(_stat(40, "kworker/R-kblockd", 3))
    (tmp_path / "proc/40/task/40/stat").write_text(_stat(40, "kworker/R-kblockd", 3))
    (tmp_path / "proc/40/task/40/status").write_text("Cpus_allowed_list:\t0-1\n")
    before = hostsnapshot.take(str(tmp_path))
    (tmp_path / "proc/40/task/40/status").write_text("Cpus_allowed_list:\t0\n")
    assert hostsnapshot.differences(before, hostsnapshot.take(str(tmp_path))) == []
    # nor are they "repaired": a repair would be reported as a change the test made
    touched: list[object] = []
    monkeypatch.setattr(hostsnapshot.os, "sched_setaffinity", lambda *a: touched.append(a))
    assert hostsnapshot.repair(before, str(tmp_path), syscalls=True) == []
    assert touched == []
    (tmp_path / "proc/40/task/40/stat").write_text(_stat(40, "kworker/R-kblockd", 3, 2, 1))
    assert len(hostsnapshot.differences(before, hostsnapshot.take(str(tmp_path)))) == 1
