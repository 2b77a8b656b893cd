"""Kernel state that matters for real time: PREEMPT_RT, sysctls, isolation, mm.

Reads the kernel release and version, /sys/kernel/realtime, the RT throttling
and housekeeping sysctls (sched_rt_runtime_us/period_us, timer_migration,
nmi_watchdog, vm.stat_interval), KSM and transparent hugepages, the
workqueue cpumask, the isolated and nohz_full CPU lists and the global
hugepage pools. One pure parser per file format; every value the kernel does
not expose is Unknown with the reason. This module must not write any of
these knobs nor judge their values (that is the tuning engine and doctor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtkvm.cpuset import CpuSet
from rtkvm.errors import CpuListError
from rtkvm.host.topology import HugepagePool, read_hugepage_dir
from rtkvm.hostfs import HostFS, Unknown

OSRELEASE_PATH = "/proc/sys/kernel/osrelease"
VERSION_PATH = "/proc/version"
REALTIME_PATH = "/sys/kernel/realtime"
ISOLATED_PATH = "/sys/devices/system/cpu/isolated"
NOHZ_FULL_PATH = "/sys/devices/system/cpu/nohz_full"
WORKQUEUE_MASK_PATH = "/sys/devices/virtual/workqueue/cpumask"
HUGEPAGES_DIR = "/sys/kernel/mm/hugepages"
KSM_RUN_PATH = "/sys/kernel/mm/ksm/run"
THP_DIR = "/sys/kernel/mm/transparent_hugepage"

SYSCTLS = {
    "rt_runtime_us": "/proc/sys/kernel/sched_rt_runtime_us",
    "rt_period_us": "/proc/sys/kernel/sched_rt_period_us",
    "timer_migration": "/proc/sys/kernel/timer_migration",
    "nmi_watchdog": "/proc/sys/kernel/nmi_watchdog",
    "stat_interval": "/proc/sys/vm/stat_interval",
}

_SELECTOR = re.compile(r"^\s*(?:[\w+-]+\s+)*\[([\w+-]+)\](?:\s+[\w+-]+)*\s*$")
"""A selector's display: its words, the chosen one in brackets (``always [madvise] never``)."""
_RT_MARKERS = ("PREEMPT_RT", "PREEMPT RT")


@dataclass(frozen=True)
class KernelReport:
    release: str | Unknown
    version: str | Unknown
    preempt_rt: bool | Unknown
    preempt_rt_source: str
    """Which file decided preempt_rt (for the operator)."""
    rt_runtime_us: int | Unknown
    rt_period_us: int | Unknown
    timer_migration: int | Unknown
    nmi_watchdog: int | Unknown
    stat_interval: int | Unknown
    ksm_run: int | Unknown
    thp_enabled: str | Unknown
    thp_defrag: str | Unknown
    workqueue_cpumask: CpuSet | Unknown
    isolated: CpuSet | Unknown
    nohz_full: CpuSet | Unknown
    hugepages: tuple[HugepagePool, ...] | Unknown


# -- pure parsers ---------------------------------------------------------------------


def parse_int(text: str, source: str) -> int | Unknown:
    """A one-integer file; Unknown naming the content when it is not one."""
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        return Unknown(source, f"expected an integer, found {stripped!r}")


def selected(display: str) -> str | None:
    """The bracketed word of a selector display, or None when the text is not one."""
    match = _SELECTOR.match(display)
    return match.group(1) if match else None


def parse_selected(text: str, source: str) -> str | Unknown:
    """The bracketed choice of a sysfs selector: ``always [madvise] never`` -> madvise."""
    word = selected(text)
    if word is not None:
        return word
    return Unknown(source, f"no [selected] word in {text.strip()!r}")


def parse_cpulist_file(text: str, source: str) -> CpuSet | Unknown:
    """A sysfs CPU list; empty text and ``(null)`` are the empty set."""
    stripped = text.strip()
    if stripped in ("", "(null)"):
        return CpuSet()
    try:
        return CpuSet.parse(stripped)
    except CpuListError as exc:
        return Unknown(source, str(exc))


def parse_mask_file(text: str, source: str) -> CpuSet | Unknown:
    try:
        return CpuSet.parse_mask(text)
    except CpuListError as exc:
        return Unknown(source, str(exc))


def preempt_rt_from(realtime: str | None, version: str | None) -> bool | None:
    """PREEMPT_RT from /sys/kernel/realtime (preferred) or /proc/version.

    None when neither text is available.
    """
    if realtime is not None:
        return realtime.strip() == "1"
    if version is not None:
        return any(marker in version for marker in _RT_MARKERS)
    return None


def release_from_version(version: str) -> str | None:
    """``Linux version 6.1.0-rt ...`` -> ``6.1.0-rt``; None when not in that form."""
    words = version.split()
    if len(words) >= 3 and words[:2] == ["Linux", "version"]:
        return words[2]
    return None


# -- readers --------------------------------------------------------------------------


def _read_int(fs: HostFS, path: str) -> int | Unknown:
    text = fs.read_maybe(path)
    return text if isinstance(text, Unknown) else parse_int(text, path)


def _read_cpulist(fs: HostFS, path: str) -> CpuSet | Unknown:
    text = fs.read_maybe(path)
    return text if isinstance(text, Unknown) else parse_cpulist_file(text, path)


def _read_selected(fs: HostFS, path: str) -> str | Unknown:
    text = fs.read_maybe(path)
    return text if isinstance(text, Unknown) else parse_selected(text, path)


def _read_nohz_full(fs: HostFS) -> CpuSet | Unknown:
    value = _read_cpulist(fs, NOHZ_FULL_PATH)
    if isinstance(value, Unknown) and value.reason == "does not exist":
        return Unknown(NOHZ_FULL_PATH, "does not exist: kernel built without NO_HZ_FULL")
    return value


def read_hugepage_pools(fs: HostFS) -> tuple[HugepagePool, ...] | Unknown:
    """Global hugepage pools (all nodes) from /sys/kernel/mm/hugepages."""
    return read_hugepage_dir(fs, HUGEPAGES_DIR)


def read_preempt_rt(fs: HostFS, version: str | Unknown) -> tuple[bool | Unknown, str]:
    realtime = fs.read_maybe(REALTIME_PATH)
    decided = preempt_rt_from(
        realtime if isinstance(realtime, str) else None,
        version if isinstance(version, str) else None,
    )
    if decided is None:
        return Unknown(REALTIME_PATH, "neither it nor /proc/version is readable"), "none"
    return decided, REALTIME_PATH if isinstance(realtime, str) else VERSION_PATH


def read_kernel(fs: HostFS) -> KernelReport:
    version = fs.read_line(VERSION_PATH)
    release = fs.read_line(OSRELEASE_PATH)
    if isinstance(release, Unknown) and isinstance(version, str):
        release = release_from_version(version) or release
    preempt_rt, source = read_preempt_rt(fs, version)
    sysctl = {key: _read_int(fs, path) for key, path in SYSCTLS.items()}
    mask = fs.read_maybe(WORKQUEUE_MASK_PATH)
    return KernelReport(
        release=release,
        version=version,
        preempt_rt=preempt_rt,
        preempt_rt_source=source,
        rt_runtime_us=sysctl["rt_runtime_us"],
        rt_period_us=sysctl["rt_period_us"],
        timer_migration=sysctl["timer_migration"],
        nmi_watchdog=sysctl["nmi_watchdog"],
        stat_interval=sysctl["stat_interval"],
        ksm_run=_read_int(fs, KSM_RUN_PATH),
        thp_enabled=_read_selected(fs, f"{THP_DIR}/enabled"),
        thp_defrag=_read_selected(fs, f"{THP_DIR}/defrag"),
        workqueue_cpumask=mask
        if isinstance(mask, Unknown)
        else parse_mask_file(mask, WORKQUEUE_MASK_PATH),
        isolated=_read_cpulist(fs, ISOLATED_PATH),
        nohz_full=_read_nohz_full(fs),
        hugepages=read_hugepage_pools(fs),
    )
