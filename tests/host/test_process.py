"""Process: capabilities, memlock, cgroup layout, RT group scheduling, /dev/kvm."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.host.process import (
    CgroupMount,
    cgroup_version,
    parse_capabilities,
    parse_cgroup_mounts,
    parse_memlock,
    read_process,
)
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.testing.kernel_files import ALL_CAPS, CAP_SYS_RESOURCE, untuned

THIS_MACHINE_MOUNTS = """\
proc /proc proc rw,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


@pytest.mark.parametrize(
    ("capeff", "present", "absent"),
    [
        ("000001fffeffffff", {"CAP_SYS_NICE", "CAP_IPC_LOCK", "CAP_CHOWN"}, {"CAP_SYS_RESOURCE"}),
        ("0000000000000000", set(), {"CAP_SYS_NICE"}),
        ("0000000000804000", {"CAP_IPC_LOCK", "CAP_SYS_NICE"}, {"CAP_SYS_ADMIN"}),
        ("0000400000000000", {"CAP_46"}, set()),
    ],
)
def test_parse_capabilities(capeff: str, present: set[str], absent: set[str]) -> None:
    caps = parse_capabilities(f"Name:\tx\nCapPrm:\t0\nCapEff:\t{capeff}\n")
    assert present <= caps
    assert not absent & caps


@pytest.mark.parametrize(
    ("status", "match"), [("Name: x\n", "no CapEff"), ("CapEff:\tzz\n", "not hex")]
)
def test_parse_capabilities_invalid(status: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_capabilities(status)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "Max locked memory         8388608              8388608              bytes",
            (8388608, 8388608),
        ),
        (
            "Max locked memory         65536                unlimited            bytes",
            (65536, None),
        ),
        ("Max locked memory         unlimited            unlimited            bytes", (None, None)),
    ],
)
def test_parse_memlock(line: str, expected: tuple[int | None, int | None]) -> None:
    limits = (
        f"Limit  Soft Limit  Hard Limit  Units\nMax stack size  8388608  unlimited  bytes\n{line}\n"
    )
    assert parse_memlock(limits) == expected


@pytest.mark.parametrize(
    "limits",
    ["Max stack size 1 1 bytes\n", "Max locked memory 5\n", "Max locked memory lots lots bytes\n"],
)
def test_parse_memlock_invalid(limits: str) -> None:
    with pytest.raises(ValueError):
        parse_memlock(limits)


@pytest.mark.parametrize(
    ("mounts", "version"),
    [
        (THIS_MACHINE_MOUNTS, "hybrid"),
        ("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n", "v2"),
        ("cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n", "v1"),
        ("proc /proc proc rw 0 0\n", None),
        ("cgroup /sys/fs/cgroup/systemd cgroup rw,name=systemd 0 0\n", None),
    ],
)
def test_cgroup_version(mounts: str, version: str | None) -> None:
    assert cgroup_version(parse_cgroup_mounts(mounts)) == version


def test_parse_cgroup_mounts_controllers_and_escapes() -> None:
    mounts = parse_cgroup_mounts(
        THIS_MACHINE_MOUNTS + "cgroup /mnt/my\\040cg cgroup rw,nosuid,cpu,cpuacct 0 0\n"
    )
    assert mounts[0] == CgroupMount("/sys/fs/cgroup/cpu", "cgroup", ("cpu",))
    assert mounts[2] == CgroupMount("/sys/fs/cgroup/systemd", "cgroup", ())
    assert mounts[3] == CgroupMount("/sys/fs/cgroup/unified", "cgroup2", ())
    assert mounts[4] == CgroupMount("/mnt/my cg", "cgroup", ("cpu", "cpuacct"))


def test_untuned_v1_host_with_rt_group_sched(tmp_path: Path) -> None:
    files = replace(
        untuned(CpuSet([0, 1])),
        cap_eff=ALL_CAPS & ~CAP_SYS_RESOURCE,
        cgroup="hybrid",
        rt_group_sched=True,
    )
    files.write(tmp_path)
    p = read_process(HostFS(tmp_path))
    assert isinstance(p.capabilities, frozenset)
    assert {"CAP_SYS_NICE", "CAP_IPC_LOCK"} <= p.capabilities
    assert "CAP_SYS_RESOURCE" not in p.capabilities
    assert (p.memlock_soft, p.memlock_hard) == (8 * 1024 * 1024, 8 * 1024 * 1024)
    assert p.cgroup_version == "hybrid"
    assert p.rt_group_sched is True
    assert p.rt_group_path == "/sys/fs/cgroup/cpu,cpuacct/cpu.rt_runtime_us"
    assert p.kvm_present is True


def test_v2_host_without_kvm(tmp_path: Path) -> None:
    replace(untuned(CpuSet([0])), kvm=False, memlock=(None, None)).write(tmp_path)
    p = read_process(HostFS(tmp_path))
    assert p.cgroup_version == "v2"
    assert p.rt_group_sched is False and p.rt_group_path is None
    assert p.kvm_present is False
    assert (p.memlock_soft, p.memlock_hard) == (None, None)


def test_empty_root_is_unknown(tmp_path: Path) -> None:
    p = read_process(HostFS(tmp_path))
    for value in (p.capabilities, p.memlock_soft, p.memlock_hard, p.cgroup_version):
        assert isinstance(value, Unknown) and value.reason == "does not exist"
    assert p.rt_group_sched is False and p.kvm_present is False
