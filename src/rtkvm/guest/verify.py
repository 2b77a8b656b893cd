"""Verify on the host, from /proc, that a running guest's threads are as designed.

For the QEMU process of a domain it reads every thread's name
(/proc/PID/task/TID/comm), scheduling policy and RT priority (fields 41 and 40
of .../stat) and CPU affinity (Cpus_allowed_list in .../status), identifies
the vCPU threads by QEMU's names ("CPU N/KVM", "CPU N/TCG") and I/O threads
("IO iothreadN"), and compares them with the domain's ``<cputune>``: vcpupin,
vcpusched, emulatorpin, iothreadpin. Every difference is a failed finding.
Everything goes through :class:`HostFS`, so tests run on fake /proc trees.
This module must not change threads (no chrt/taskset) nor talk to libvirt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtkvm.cpuset import CpuSet
from rtkvm.domain.xml import CpuTune
from rtkvm.errors import HostReadError
from rtkvm.findings import Finding, Report, Severity, Status
from rtkvm.hostfs import HostFS

POLICIES = {0: "other", 1: "fifo", 2: "rr", 3: "batch", 5: "idle", 6: "deadline"}
_VCPU = re.compile(r"^CPU (\d+)/(KVM|TCG|HVF|WHPX)$")
_IOTHREAD = re.compile(r"^IO iothread(\d+)$")


@dataclass(frozen=True)
class ThreadState:
    """What the kernel says about one thread."""

    tid: int
    comm: str
    policy: str
    rt_priority: int
    cpus: CpuSet

    @property
    def vcpu(self) -> int | None:
        match = _VCPU.match(self.comm)
        return int(match.group(1)) if match else None

    @property
    def accel(self) -> str | None:
        match = _VCPU.match(self.comm)
        return match.group(2) if match else None

    @property
    def iothread(self) -> int | None:
        match = _IOTHREAD.match(self.comm)
        return int(match.group(1)) if match else None


def parse_stat_sched(stat_text: str, source: str) -> tuple[str, int]:
    """(policy name, rt_priority) from a /proc/PID/task/TID/stat line."""
    close = stat_text.rfind(")")
    fields = stat_text[close + 2 :].split()
    # fields[0] is field 3 (state); rt_priority is field 40, policy field 41.
    if close < 0 or len(fields) < 39:
        raise HostReadError(source, "too few fields for rt_priority and policy")
    rt_priority, policy = int(fields[37]), int(fields[38])
    return POLICIES.get(policy, f"policy{policy}"), rt_priority


def parse_status_cpus(status_text: str, source: str) -> CpuSet:
    for line in status_text.splitlines():
        name, _, value = line.partition(":")
        if name == "Cpus_allowed_list":
            return CpuSet.parse(value.strip())
    raise HostReadError(source, "no Cpus_allowed_list line")


def read_threads(fs: HostFS, pid: int) -> list[ThreadState]:
    """Every thread of a process, sorted by tid (threads that exit meanwhile are skipped)."""
    base = f"/proc/{pid}/task"
    threads = []
    for name in fs.listdir(base):
        if not name.isdigit():
            continue
        try:
            comm = fs.read(f"{base}/{name}/comm").strip()
            stat_path = f"{base}/{name}/stat"
            policy, prio = parse_stat_sched(fs.read(stat_path), stat_path)
            status_path = f"{base}/{name}/status"
            cpus = parse_status_cpus(fs.read(status_path), status_path)
        except HostReadError as exc:
            if exc.reason == "does not exist":
                continue  # the thread exited while we read it
            raise
        threads.append(ThreadState(int(name), comm, policy, prio, cpus))
    return sorted(threads, key=lambda t: t.tid)


def verify_threads(subject: str, threads: list[ThreadState], tune: CpuTune, vcpus: int) -> Report:
    """Compare thread states with the domain's cputune; one finding per check."""
    findings: list[Finding] = []
    by_vcpu = {t.vcpu: t for t in threads if t.vcpu is not None}
    pins = {p.vcpu: p.cpuset for p in tune.vcpupins}
    sched: dict[int, tuple[str, int]] = {}
    for s in tune.vcpuscheds:
        for v in s.vcpus:
            sched[v] = (s.scheduler, s.priority or 0)
    for v in range(vcpus):
        thread = by_vcpu.get(v)
        if thread is None:
            findings.append(_fail(f"vcpu{v}.thread", f"no thread named 'CPU {v}/...'", None, v))
            continue
        want_policy, want_prio = sched.get(v, ("other", 0))
        got = f"{thread.policy}/{thread.rt_priority}"
        want = f"{want_policy}/{want_prio}"
        findings.append(
            _check(f"vcpu{v}.sched", got == want, f"vCPU {v} (tid {thread.tid})", got, want)
        )
        if v in pins:
            got_cpus, want_cpus = thread.cpus.format(), pins[v].format()
            findings.append(
                _check(
                    f"vcpu{v}.affinity",
                    thread.cpus == pins[v],
                    f"vCPU {v} (tid {thread.tid}) CPU affinity",
                    got_cpus,
                    want_cpus,
                )
            )
    io_pins = {p.iothread: p.cpuset for p in tune.iothreadpins}
    for t in threads:
        if t.iothread is not None and t.iothread in io_pins:
            io_cpus = io_pins[t.iothread]
            findings.append(
                _check(
                    f"iothread{t.iothread}.affinity",
                    t.cpus == io_cpus,
                    f"I/O thread {t.iothread} (tid {t.tid}) CPU affinity",
                    t.cpus.format(),
                    io_cpus.format(),
                )
            )
    if tune.emulatorpin is not None:
        emulator = [t for t in threads if t.vcpu is None and t.iothread is None]
        wrong = {
            f"{t.tid} {t.comm}": t.cpus.format() for t in emulator if t.cpus != tune.emulatorpin
        }
        message = f"{len(emulator)} emulator threads CPU affinity"
        observed = wrong or tune.emulatorpin.format()
        findings.append(
            _check("emulator.affinity", not wrong, message, observed, tune.emulatorpin.format())
        )
    accels = sorted({t.accel for t in threads if t.accel})
    notes = (f"vCPU threads run under {', '.join(accels)}",) if accels else ()
    return Report(subject, tuple(findings), "in effect", "differs from design", notes)


def _check(check: str, ok: bool, what: str, observed: object, expected: object) -> Finding:
    status = Status.PASS if ok else Status.FAIL
    verdict = "as designed" if ok else f"is {observed}, designed {expected}"
    return Finding(
        id=f"guest.{check}",
        severity=Severity.ERROR,
        status=status,
        message=f"{what} {verdict}",
        observed=observed,
        expected=expected,
        why="RT vCPUs must run at their FIFO priority on their own pCPU, and emulator "
        "threads away from them, or the guest's latency is not bounded",
        fix="" if ok else "check libvirtd's log for the domain; restart the guest",
    )


def _fail(check: str, message: str, observed: object, vcpu: int) -> Finding:
    return Finding(
        id=f"guest.{check}",
        severity=Severity.ERROR,
        status=Status.FAIL,
        message=message,
        observed=observed,
        expected=f"a thread for vCPU {vcpu}",
        fix="is the domain running? QEMU names vCPU threads 'CPU N/KVM' or 'CPU N/TCG'",
    )
