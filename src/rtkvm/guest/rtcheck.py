"""Is a running guest real-time as designed? Its threads from /proc and its live XML, judged.

:func:`check_live` verifies every vCPU, emulator and I/O thread of the QEMU
process against the domain's pinning and RT scheduling
(:func:`rtkvm.guest.verify.verify_threads`) and audits the live domain against
the RT rules and the host's partition (:func:`rtkvm.domain.audit.audit_domain`).
An audit failure that a present host quirk explains (``waived_by`` in the
rules) is the host's known waiver, named as such; any other failure, and a
thread that does not verify or cannot be read, makes the guest ``degraded``
with each reason. The same judgement serves rtkvm's own guests (the agent,
after every create and start) and Nova's (:mod:`rtkvm.openstack.enforce`).

:func:`check_shared` judges an ordinary (``hw:cpu_policy=shared``) guest that
shares a host with RT guests: its threads as designed, and every vCPU, emulator
and I/O thread pin of the live domain inside the host's housekeeping CPUs and
without a real-time scheduler, so it never runs on an RT or data-plane CPU.
This module reads only: it must not change a thread, talk to libvirt or to
any API.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from rtkvm.cpuset import CpuSet
from rtkvm.domain.audit import AuditHost, audit_domain, waived_failures
from rtkvm.domain.xml import Domain
from rtkvm.domain.xml_tuning import CpuTune
from rtkvm.findings import Report, Status
from rtkvm.guest.verify import read_threads, verify_threads
from rtkvm.hostfs import HostFS

RtState = Literal["verified", "degraded"]


@dataclass(frozen=True)
class RtCheck:
    state: RtState
    reasons: tuple[str, ...] = ()
    """Why degraded, one line each; empty when verified."""
    waived: dict[str, str] = field(default_factory=dict)
    """Audit rules that failed because of a host quirk: rule -> quirk."""
    verify: Report | None = None
    audit: Report | None = None


def check_live(
    domain: Domain,
    qemu_pid: int,
    *,
    fs: HostFS,
    host: AuditHost,
    quirks: set[str],
    subject: str,
    cputune: CpuTune | None = None,
) -> RtCheck:
    """Verify the guest's threads and audit its domain; ``cputune``: what its threads must
    have when that differs from the XML (a Nova guest whose flavor priority rtkvm applies)."""
    wanted = cputune if cputune is not None else (domain.cputune or CpuTune())
    verify = verify_threads(subject, read_threads(fs, qemu_pid), wanted, domain.vcpus)
    reasons = [
        f"{f.id}: {f.message}" for f in verify.findings if f.status in (Status.FAIL, Status.UNKNOWN)
    ]
    audit = audit_domain(replace(domain, cputune=wanted), host, subject=subject)
    waived = waived_failures(audit, quirks)
    reasons += [
        f"audit {f.id}: {f.message}"
        for f in audit.findings
        if f.status is Status.FAIL and f.id not in waived
    ]
    return RtCheck(
        "degraded" if reasons else "verified", tuple(reasons), waived, verify=verify, audit=audit
    )


def check_shared(
    domain: Domain, qemu_pid: int, *, fs: HostFS, housekeeping: CpuSet | None, subject: str
) -> RtCheck:
    """Verify a shared guest's threads and that its live domain keeps off RT CPUs."""
    tune = domain.cputune or CpuTune()
    verify = verify_threads(subject, read_threads(fs, qemu_pid), tune, domain.vcpus)
    reasons = [
        f"{f.id}: {f.message}" for f in verify.findings if f.status in (Status.FAIL, Status.UNKNOWN)
    ]
    reasons += shared_isolation(domain, housekeeping)
    return RtCheck("degraded" if reasons else "verified", tuple(reasons), verify=verify)


def shared_isolation(domain: Domain, housekeeping: CpuSet | None) -> list[str]:
    """Why a shared guest's live domain may touch RT CPUs; [] when it cannot."""
    if housekeeping is None:
        return ["shared.isolation: no host partition to check the pins against"]
    tune = domain.cputune or CpuTune()
    pins = {f"vCPU {p.vcpu}": p.cpuset for p in tune.vcpupins}
    pins |= {f"I/O thread {p.iothread}": p.cpuset for p in tune.iothreadpins}
    if tune.emulatorpin is not None:
        pins["emulator"] = tune.emulatorpin
    if domain.vcpu_cpuset is not None:
        pins["<vcpu cpuset>"] = domain.vcpu_cpuset
    reasons = [
        f"shared.isolation: {what} may run on CPUs {cpus - housekeeping}, outside the "
        f"housekeeping CPUs {housekeeping}"
        for what, cpus in pins.items()
        if cpus - housekeeping
    ]
    unpinned = [v for v in range(domain.vcpus) if f"vCPU {v}" not in pins]
    if unpinned and domain.vcpu_cpuset is None:
        reasons.append(f"shared.isolation: vCPUs {unpinned} are unpinned and may run anywhere")
    if tune.emulatorpin is None:
        reasons.append("shared.isolation: the emulator threads are unpinned")
    rt = [s.vcpus.format() for s in tune.vcpuscheds if s.scheduler in ("fifo", "rr")]
    if rt:
        reasons.append(f"shared.isolation: vCPUs {', '.join(rt)} have a real-time scheduler")
    return reasons
