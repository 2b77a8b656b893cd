"""What this host lets the RT switch do: pre-flight checks and log diagnosis.

Each known limit of a host is detected here and turned into a finding with
a fix: missing OVS/DPDK binaries, DPDK drivers Debian ships separately (the
ring mempool), RT throttling off (a FIFO PMD would starve its core), a cgroup
with no real-time budget (SCHED_FIFO refused), hugetlbfs not mounted. The
vswitchd log is scanned for the failures those limits cause later. Reads go
through HostFS; this module must not change the host or start anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtkvm.dataplane.settings import DataplaneSettings
from rtkvm.findings import Finding, Report, Severity, Status
from rtkvm.hostfs import HostFS, Unknown


def preflight(fs: HostFS, settings: DataplaneSettings, *, pid: str = "self") -> Report:
    """Everything that must hold before rtkvm starts OVS-DPDK."""
    findings = [_binary(fs, name, path) for name, path in vars(settings.binaries).items()]
    findings += [
        _driver(fs, settings.drivers_dir, d.file, d.package, d.why)
        for d in settings.required_drivers
    ]
    if settings.pmd_policy != "other":
        findings.append(rt_throttling(fs))
        findings.append(_rt_cgroup_budget(fs, pid))
    findings.append(_hugetlbfs(fs))
    return Report(
        "data plane pre-flight", tuple(findings), ok_verdict="ready", bad_verdict="blocked"
    )


def _binary(fs: HostFS, name: str, path: str) -> Finding:
    present = fs.exists(path)
    return Finding(
        f"dataplane.binary.{name}",
        Severity.ERROR,
        Status.PASS if present else Status.FAIL,
        f"{path} {'exists' if present else 'is missing'}",
        observed=present,
        expected=True,
        fix="apt-get install openvswitch-switch-dpdk (make setup does it)",
    )


def _driver(fs: HostFS, directory: str, file: str, package: str, why: str) -> Finding:
    path = f"{directory}/{file}"
    present = fs.exists(path)
    return Finding(
        f"dataplane.dpdk-driver.{file}",
        Severity.ERROR,
        Status.PASS if present else Status.FAIL,
        f"DPDK driver {path} {'is installed' if present else 'is missing'}",
        observed=present,
        expected=True,
        why=why,
        fix=f"apt-get install {package}",
    )


def rt_throttling(fs: HostFS) -> Finding:
    runtime = fs.read_line("/proc/sys/kernel/sched_rt_runtime_us")
    period = fs.read_line("/proc/sys/kernel/sched_rt_period_us")
    if isinstance(runtime, Unknown) or isinstance(period, Unknown):
        return Finding(
            "dataplane.rt-throttling",
            Severity.ERROR,
            Status.UNKNOWN,
            f"RT throttling could not be read: {runtime}, {period}",
        )
    off = int(runtime) < 0 or int(runtime) >= int(period)
    return Finding(
        "dataplane.rt-throttling",
        Severity.ERROR,
        Status.FAIL if off else Status.PASS,
        f"sched_rt_runtime_us={runtime} of sched_rt_period_us={period}",
        observed=int(runtime),
        expected=f"0 <= runtime < {period}",
        why=(
            "A real-time PMD thread never sleeps; with RT throttling off it would starve "
            "every normal task on its CPU forever (per-CPU kworkers, RCU: stalls, hangs)."
        ),
        fix="echo 950000 > /proc/sys/kernel/sched_rt_runtime_us, or set pmd.policy = 'other'",
    )


def _rt_cgroup_budget(fs: HostFS, pid: str) -> Finding:
    """cgroup v1 with RT group scheduling: a group with cpu.rt_runtime_us 0 cannot use FIFO."""
    text = fs.read_maybe(f"/proc/{pid}/cgroup")
    if isinstance(text, Unknown):
        return Finding("dataplane.rt-cgroup", Severity.ERROR, Status.UNKNOWN, str(text))
    path = cgroup_v1_cpu_path(text)
    if path is None:
        return Finding(
            "dataplane.rt-cgroup",
            Severity.ERROR,
            Status.SKIP,
            "no cgroup v1 cpu controller: no per-group real-time budget to check",
        )
    budget_file = f"/sys/fs/cgroup/cpu{path.rstrip('/')}/cpu.rt_runtime_us"
    if path == "/":
        budget_file = "/sys/fs/cgroup/cpu/cpu.rt_runtime_us"
    budget = fs.read_line(budget_file)
    if isinstance(budget, Unknown):
        return Finding(
            "dataplane.rt-cgroup",
            Severity.ERROR,
            Status.SKIP,
            f"cgroup {path} has no cpu.rt_runtime_us (kernel without RT group scheduling)",
        )
    zero = int(budget) == 0
    return Finding(
        "dataplane.rt-cgroup",
        Severity.ERROR,
        Status.FAIL if zero else Status.PASS,
        f"cpu cgroup {path}: cpu.rt_runtime_us={budget}",
        observed=int(budget),
        expected="> 0",
        why=(
            "With RT group scheduling a task in a group with no RT budget gets "
            "'Operation not permitted' for SCHED_FIFO, so rtkvm could not set the PMD priority."
        ),
        fix=f"echo 950000 > {budget_file} (its parents need at least as much), or run rtkvm "
        "from the root cpu cgroup",
    )


def cgroup_v1_cpu_path(text: str) -> str | None:
    """The path of the v1 controller that includes 'cpu' in /proc/PID/cgroup, or None."""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and "cpu" in parts[1].split(","):
            return parts[2] or "/"
    return None


def _hugetlbfs(fs: HostFS) -> Finding:
    mounts = fs.read_maybe("/proc/mounts")
    if isinstance(mounts, Unknown):
        return Finding("dataplane.hugetlbfs", Severity.WARNING, Status.UNKNOWN, str(mounts))
    points = hugetlbfs_mounts(mounts)
    return Finding(
        "dataplane.hugetlbfs",
        Severity.INFO,
        Status.PASS if points else Status.FAIL,
        f"hugetlbfs mounted at {', '.join(points)}" if points else "hugetlbfs is not mounted",
        observed=points,
        fix="rtkvm net up mounts it at /dev/hugepages",
    )


def hugetlbfs_mounts(mounts: str) -> list[str]:
    return [
        f[1]
        for f in (line.split() for line in mounts.splitlines())
        if len(f) > 2 and f[2] == "hugetlbfs"
    ]


@dataclass(frozen=True)
class LogProblem:
    pattern: str
    meaning: str
    fix: str


LOG_PROBLEMS = (
    LogProblem(
        r"Failed to create memory pool for netdev",
        "DPDK could not create packet buffer pools: no packet will flow",
        "install librte-mempool-ring23 (the ring mempool driver) and check free hugepages",
    ),
    LogProblem(
        r"EAL: (?:Cannot get hugepage information|No available \d+ kB hugepages reported)",
        "DPDK found no usable hugepages",
        "reserve hugepages on the PMD threads' NUMA node and mount hugetlbfs",
    ),
    LogProblem(
        r"Cannot init memory|EAL: FATAL",
        "DPDK's EAL failed to initialise",
        "see the EAL lines above it in the vswitchd log",
    ),
    LogProblem(
        r"Failed to set sched|pthread_setaffinity_np.*failed",
        "OVS could not place a thread",
        "check pmd-cpu-mask against the CPUs online and the process's cpuset",
    ),
)


def diagnose_log(text: str) -> list[str]:
    """One message per known problem found in an ovs-vswitchd log, with its fix."""
    found = []
    for problem in LOG_PROBLEMS:
        match = re.search(problem.pattern, text)
        if match:
            line = text[text.rfind("\n", 0, match.start()) + 1 : text.find("\n", match.end())]
            found.append(f"{problem.meaning} (log: {line.strip()!r}); fix: {problem.fix}")
    return found


def iova_mode(text: str) -> str | None:
    match = re.search(r"EAL: Selected IOVA mode '(\w+)'", text)
    return match.group(1) if match else None
