"""Kernel state: parsers for each file format and the reader on fake roots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.host.kernel import (
    parse_cpulist_file,
    parse_int,
    parse_mask_file,
    parse_selected,
    preempt_rt_from,
    read_kernel,
    release_from_version,
)
from rtkvm.host.topology import HugepagePool
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.testing.kernel_files import tuned, untuned

CPUS = CpuSet(range(8))


@pytest.mark.parametrize(("text", "value"), [("950000\n", 950000), ("-1", -1), (" 0 ", 0)])
def test_parse_int_valid(text: str, value: int) -> None:
    assert parse_int(text, "/f") == value


@pytest.mark.parametrize("text", ["", "abc", "1.5", "1 2"])
def test_parse_int_invalid(text: str) -> None:
    result = parse_int(text, "/f")
    assert isinstance(result, Unknown) and result.source == "/f"
    assert "expected an integer" in result.reason


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("always [madvise] never\n", "madvise"),
        ("[always] madvise never", "always"),
        ("always defer defer+madvise madvise [never]", "never"),
        ("always defer [defer+madvise] madvise never", "defer+madvise"),
    ],
)
def test_parse_selected_valid(text: str, word: str) -> None:
    assert parse_selected(text, "/thp") == word


@pytest.mark.parametrize("text", ["", "always madvise never"])
def test_parse_selected_invalid(text: str) -> None:
    assert isinstance(parse_selected(text, "/thp"), Unknown)


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("\n", CpuSet()),
        ("(null)\n", CpuSet()),
        ("2-7\n", CpuSet(range(2, 8))),
        ("1,3", CpuSet([1, 3])),
    ],
)
def test_parse_cpulist_file_valid(text: str, cpus: CpuSet) -> None:
    assert parse_cpulist_file(text, "/x") == cpus


@pytest.mark.parametrize("text", ["x", "3-1", "1,,2"])
def test_parse_cpulist_file_invalid(text: str) -> None:
    assert isinstance(parse_cpulist_file(text, "/x"), Unknown)


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("3\n", CpuSet([0, 1])), ("ff", CpuSet(range(8))), ("00000001,00000000", CpuSet([32]))],
)
def test_parse_mask_file_valid(text: str, cpus: CpuSet) -> None:
    assert parse_mask_file(text, "/m") == cpus


@pytest.mark.parametrize("text", ["", "xyz", "1,2"])
def test_parse_mask_file_invalid(text: str) -> None:
    assert isinstance(parse_mask_file(text, "/m"), Unknown)


@pytest.mark.parametrize(
    ("realtime", "version", "expected"),
    [
        ("1\n", None, True),
        ("0\n", "Linux version 6.1 #1 SMP PREEMPT_RT", False),
        (None, "Linux version 6.1.0-rt #1 SMP PREEMPT_RT Debian", True),
        (None, "Linux version 4.19-rt #1 SMP PREEMPT RT Tue", True),
        (None, "Linux version 6.18.44 #1 SMP PREEMPT_DYNAMIC @0", False),
        (None, None, None),
    ],
)
def test_preempt_rt_from(realtime: str | None, version: str | None, expected: bool | None) -> None:
    assert preempt_rt_from(realtime, version) is expected


@pytest.mark.parametrize(
    ("version", "release"),
    [
        ("Linux version 6.18.44-fc-v782 (builder@x) #1 SMP", "6.18.44-fc-v782"),
        ("Linux version", None),
        ("garbage", None),
    ],
)
def test_release_from_version(version: str, release: str | None) -> None:
    assert release_from_version(version) == release


def test_untuned_host(tmp_path: Path) -> None:
    untuned(CPUS).write(tmp_path)
    k = read_kernel(HostFS(tmp_path))
    assert k.release == "6.1.0-18-amd64"
    assert k.preempt_rt is False and k.preempt_rt_source == "/proc/version"
    assert (k.rt_runtime_us, k.rt_period_us) == (950000, 1000000)
    assert (k.timer_migration, k.nmi_watchdog, k.stat_interval) == (1, 1, 1)
    assert (k.ksm_run, k.thp_enabled, k.thp_defrag) == (0, "always", "madvise")
    assert k.workqueue_cpumask == CPUS
    assert k.isolated == CpuSet()
    assert isinstance(k.nohz_full, Unknown) and "NO_HZ_FULL" in k.nohz_full.reason
    assert k.hugepages == (HugepagePool(2048, 0, 0), HugepagePool(1048576, 0, 0))


def test_tuned_host(tmp_path: Path) -> None:
    tuned(CPUS, CpuSet([0, 1])).write(tmp_path)
    k = read_kernel(HostFS(tmp_path))
    assert k.preempt_rt is True and k.preempt_rt_source == "/sys/kernel/realtime"
    assert k.rt_runtime_us == -1
    assert (k.timer_migration, k.nmi_watchdog, k.stat_interval) == (0, 0, 10)
    assert (k.ksm_run, k.thp_enabled, k.thp_defrag) == (2, "never", "never")
    assert k.workqueue_cpumask == CpuSet([0, 1])
    assert k.isolated == CpuSet(range(2, 8)) and k.nohz_full == CpuSet(range(2, 8))
    assert k.hugepages == (HugepagePool(2048, 0, 0), HugepagePool(1048576, 8, 8))


def test_empty_root_is_all_unknown_not_a_crash(tmp_path: Path) -> None:
    k = read_kernel(HostFS(tmp_path))
    assert isinstance(k.preempt_rt, Unknown)
    for value in (k.release, k.rt_runtime_us, k.thp_enabled, k.workqueue_cpumask, k.isolated):
        assert isinstance(value, Unknown)
        assert value.reason == "does not exist"
    assert isinstance(k.hugepages, Unknown)


def test_release_falls_back_to_proc_version(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/version").write_text("Linux version 6.1.0-rt9 (x) #1 SMP PREEMPT_RT\n")
    k = read_kernel(HostFS(tmp_path))
    assert k.release == "6.1.0-rt9" and k.preempt_rt is True


def test_garbage_sysctl_is_unknown_with_content(tmp_path: Path) -> None:
    untuned(CPUS).write(tmp_path)
    (tmp_path / "proc/sys/kernel/sched_rt_runtime_us").write_text("lots\n")
    k = read_kernel(HostFS(tmp_path))
    assert isinstance(k.rt_runtime_us, Unknown) and "'lots'" in k.rt_runtime_us.reason


def test_nohz_full_null_reads_as_empty(tmp_path: Path) -> None:
    replace(untuned(CPUS), nohz_full=CpuSet()).write(tmp_path)
    assert (tmp_path / "sys/devices/system/cpu/nohz_full").read_text() == "(null)\n"
    assert read_kernel(HostFS(tmp_path)).nohz_full == CpuSet()


@pytest.mark.parametrize(("field", "word"), [("thp_enabled", "sometimes"), ("thp_defrag", "x")])
def test_kernel_files_rejects_unknown_thp_words(tmp_path: Path, field: str, word: str) -> None:
    with pytest.raises(ValueError, match="is not one of"):
        replace(untuned(CPUS), **{field: word}).write(tmp_path)
