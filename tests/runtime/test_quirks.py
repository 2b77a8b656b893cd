"""Quirk detection on fake /proc and /sys trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtkvm.findings import Status
from rtkvm.hostfs import HostFS
from rtkvm.runtime.quirks import (
    detect_all,
    detect_kvm,
    detect_memlock,
    detect_no_cap_sys_resource,
    detect_rt_group_sched,
    quirks_report,
    vhost_user_msix_quirk,
)

V1_MOUNTS = (
    "cgroup /sys/fs/cgroup/cpu cgroup rw,nosuid,nodev,noexec,relatime,cpu 0 0\n"
    "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid 0 0\n"
)
STATUS_NO_SYS_RESOURCE = "Name:\tpython\nCapEff:\t000001fffeffffff\n"
STATUS_ALL = "Name:\tpython\nCapEff:\t000001ffffffffff\n"
LIMITS = (
    "Limit                     Soft Limit           Hard Limit           Units\n"
    "Max locked memory         8388608              8388608              bytes\n"
)


def _tree(tmp_path: Path, files: dict[str, str]) -> HostFS:
    for rel, text in files.items():
        path = tmp_path / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return HostFS(tmp_path)


def test_this_machine_kind(tmp_path: Path) -> None:
    fs = _tree(
        tmp_path,
        {
            "/proc/mounts": V1_MOUNTS,
            "/sys/fs/cgroup/cpu/cpu.rt_runtime_us": "950000\n",
            "/proc/self/status": STATUS_NO_SYS_RESOURCE,
            "/proc/self/limits": LIMITS,
            "/dev/kvm": "",
        },
    )
    quirks = {q.id: q for q in detect_all(fs, accel="tcg", probe_booted=False, probe_detail="hung")}
    assert all(q.present for q in quirks.values())
    assert "MEANINGLESS" in quirks["kvm_unusable"].warning
    report = quirks_report("t", list(quirks.values()))
    assert report.ok  # warnings only: quirks are handled
    assert {f.status for f in report.findings} == {Status.FAIL}


def test_rt_group_sched_absent_without_rt_runtime_file(tmp_path: Path) -> None:
    fs = _tree(tmp_path, {"/proc/mounts": V1_MOUNTS, "/sys/fs/cgroup/cpu/cpu.shares": "1"})
    assert detect_rt_group_sched(fs).present is False


def test_rt_group_sched_cgroup_v2_only(tmp_path: Path) -> None:
    fs = _tree(tmp_path, {"/proc/mounts": "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"})
    quirk = detect_rt_group_sched(fs)
    assert quirk.present is False and "v2" in quirk.observed


def test_unreadable_is_unknown_not_absent(tmp_path: Path) -> None:
    fs = HostFS(tmp_path)
    assert detect_rt_group_sched(fs).present is None
    assert detect_no_cap_sys_resource(fs).present is None
    assert detect_memlock(fs).present is None
    report = quirks_report("t", [detect_memlock(fs)])
    assert report.findings[0].status is Status.UNKNOWN


@pytest.mark.parametrize(
    ("status", "present"), [(STATUS_NO_SYS_RESOURCE, True), (STATUS_ALL, False)]
)
def test_cap_sys_resource(tmp_path: Path, status: str, present: bool) -> None:
    fs = _tree(tmp_path, {"/proc/self/status": status})
    assert detect_no_cap_sys_resource(fs).present is present


def test_memlock_unlimited(tmp_path: Path) -> None:
    fs = _tree(tmp_path, {"/proc/self/limits": LIMITS.replace("8388608", "unlimited")})
    assert detect_memlock(fs).present is False


def test_kvm(tmp_path: Path) -> None:
    assert detect_kvm(HostFS(tmp_path), True, "booted").present is True  # no /dev/kvm
    fs = _tree(tmp_path, {"/dev/kvm": ""})
    assert detect_kvm(fs, True, "booted").present is False
    assert detect_kvm(fs, False, "timed out").present is True
    assert detect_kvm(fs, None, "not probed").present is None


def test_msix_quirk_follows_the_accelerator() -> None:
    assert vhost_user_msix_quirk("tcg").present is True
    assert vhost_user_msix_quirk("kvm").present is False
