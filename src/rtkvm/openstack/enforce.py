"""rtkvm's treatment of one Nova-built guest: its flavor's RT priority applied, verified, audited.

Nova renders one host-wide FIFO priority for every RT vCPU. For a running Nova
domain, :func:`enforce` reads the flavor from Nova's metadata in the domain XML
(:mod:`rtkvm.openstack.novaguest`), turns its extra specs into rtkvm's spec
(``rtkvm:cpu_realtime_policy`` and ``rtkvm:cpu_realtime_priority`` on rtkvm's
one priority scale, :mod:`rtkvm.priorities`), sets that policy and priority
on the RT vCPU threads that differ, verifies every vCPU, emulator and I/O
thread from /proc against the domain's pinning and the flavor's scheduling
and audits the domain against the RT rules and the host's partition, both
through :func:`rtkvm.guest.rtcheck.check_live` (an audit failure a host
quirk explains is the host's known waiver). A thread that could not be set,
any failure the check finds, or a flavor rtkvm cannot read makes the guest
``degraded``, with each reason. Threads change only through the
:class:`~rtkvm.tune.system.ProcessControl` seam and /proc is read through
:class:`~rtkvm.hostfs.HostFS`. This module must not talk to libvirt or Nova.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from rtkvm.domain.audit import AuditHost
from rtkvm.domain.spec import from_extra_specs, resolve_mask
from rtkvm.domain.xml import parse_domain
from rtkvm.domain.xml_tuning import CpuTune, VcpuSched
from rtkvm.errors import HostWriteError, RtkvmError
from rtkvm.findings import Report
from rtkvm.guest.rtcheck import check_live
from rtkvm.guest.verify import read_threads
from rtkvm.hostfs import HostFS
from rtkvm.openstack.novaguest import NovaGuest
from rtkvm.priorities import band_problem
from rtkvm.tune.system import ProcessControl

POLICIES = {"fifo": os.SCHED_FIFO, "rr": os.SCHED_RR}

Verdict = Literal["verified", "degraded", "not-rt"]


@dataclass(frozen=True)
class GuestVerdict:
    server_id: str
    domain: str
    name: str
    flavor: str
    verdict: Verdict
    policy: str = ""
    priority: int = 0
    rt_vcpus: str = ""
    reasons: tuple[str, ...] = ()
    """Why degraded; empty when verified."""
    applied: tuple[str, ...] = ()
    """Threads whose scheduling rtkvm changed, one line each."""
    waived: dict[str, str] = field(default_factory=dict)
    """Audit rules that failed because of a host quirk: rule -> quirk."""
    verify: Report | None = None
    audit: Report | None = None

    @property
    def summary(self) -> str:
        """One line for a Nova server's metadata (255 characters at most)."""
        if self.verdict == "not-rt":
            return "not-rt: the flavor is not real-time"
        head = f"{self.verdict}: {self.policy}/{self.priority} on vCPU {self.rt_vcpus}"
        if self.reasons:
            head += "; " + "; ".join(self.reasons)
        if self.waived:
            head += "; waived by host: " + ", ".join(sorted(self.waived))
        return head[:255]

    def to_dict(self) -> dict[str, Any]:
        return {
            "server_id": self.server_id,
            "domain": self.domain,
            "name": self.name,
            "flavor": self.flavor,
            "verdict": self.verdict,
            "policy": self.policy,
            "priority": self.priority,
            "rt_vcpus": self.rt_vcpus,
            "reasons": list(self.reasons),
            "applied": list(self.applied),
            "waived": dict(self.waived),
            "verify": self.verify.to_dict() if self.verify else None,
            "audit": self.audit.to_dict() if self.audit else None,
        }


def enforce(
    guest: NovaGuest,
    xml: str,
    qemu_pid: int,
    *,
    fs: HostFS,
    control: ProcessControl,
    host: AuditHost,
    quirks: set[str],
) -> GuestVerdict:
    """Apply the flavor's RT scheduling to the guest's RT vCPUs, then verify and audit."""
    base = GuestVerdict(guest.server_id, guest.domain, guest.name, guest.flavor, "degraded")
    domain = parse_domain(xml, source=f"domain {guest.domain}")
    try:
        spec = from_extra_specs(
            guest.extra_specs,
            vcpus=domain.vcpus,
            memory_mib=max(domain.memory_kib // 1024, 1),
            name=guest.flavor or "nova",
        ).spec
    except RtkvmError as exc:
        return replace(base, reasons=(f"flavor {guest.flavor}: {exc}",))
    if not spec.realtime:
        return replace(base, verdict="not-rt")
    rt = resolve_mask(spec.realtime_mask, spec.vcpus)
    reasons: list[str] = []
    tune = domain.cputune or CpuTune()
    wanted = replace(tune, vcpuscheds=(VcpuSched(rt, spec.sched_policy, spec.priority),))
    problem = band_problem(spec.priority)
    if problem is not None:  # never set a priority outside the RT band: Nova's stays
        reasons.append(f"rtkvm:cpu_realtime_priority {spec.priority} not applied: {problem}")
        wanted = tune
    subject = f"Nova server {guest.name} ({guest.domain}, QEMU pid {qemu_pid})"
    applied: list[str] = []
    for thread in read_threads(fs, qemu_pid) if problem is None else []:
        if thread.vcpu is None or thread.vcpu not in rt:
            continue
        if (thread.policy, thread.rt_priority) == (spec.sched_policy, spec.priority):
            continue
        try:
            control.set_sched(thread.tid, POLICIES[spec.sched_policy], spec.priority)
        except HostWriteError as exc:
            reasons.append(f"vCPU {thread.vcpu} (tid {thread.tid}) could not be set: {exc}")
            continue
        applied.append(
            f"vCPU {thread.vcpu} (tid {thread.tid}): {thread.policy}/{thread.rt_priority} -> "
            f"{spec.sched_policy}/{spec.priority}"
        )
    live = check_live(
        domain, qemu_pid, fs=fs, host=host, quirks=quirks, subject=subject, cputune=wanted
    )
    reasons += live.reasons
    return replace(
        base,
        verdict="degraded" if reasons else "verified",
        policy=spec.sched_policy,
        priority=spec.priority,
        rt_vcpus=rt.format(),
        reasons=tuple(reasons),
        applied=tuple(applied),
        waived=live.waived,
        verify=live.verify,
        audit=live.audit,
    )
