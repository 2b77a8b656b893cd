"""Detect the quirks of this machine that change how RT guests can run.

Each detector reads the host through :class:`HostFS` (so tests run on fake
trees) and returns a :class:`Quirk`: whether it is present, what was observed,
what it means and how rtkvm handles it. The KVM usability quirk takes the
result of the bounded boot probe (:mod:`rtkvm.runtime.kvmprobe`) as a value.
This module must not change the host, start processes or hide a quirk: a
quirk that cannot be judged is reported as unknown, never as absent.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtkvm.findings import Finding, Report, Severity, Status
from rtkvm.hostfs import HostFS, Unknown

CAP_SYS_RESOURCE = 24
"""Bit of CAP_SYS_RESOURCE in the capability masks of /proc/PID/status."""


@dataclass(frozen=True)
class Quirk:
    """One detected property of the machine and how rtkvm handles it."""

    id: str
    present: bool | None
    """True: the quirk applies; False: it does not; None: could not be judged."""
    observed: str
    meaning: str
    handling: str

    @property
    def warning(self) -> str:
        """The one-line warning shown to users when the quirk applies."""
        return f"{self.id}: {self.meaning} {self.handling}"


def mount_point(fs: HostFS, fstype: str, option: str) -> str | Unknown:
    """Mount point of the first ``fstype`` mount whose options include ``option``."""
    mounts = fs.read_maybe("/proc/self/mounts")
    if isinstance(mounts, Unknown):
        return mounts
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == fstype and option in fields[3].split(","):
            return fields[1]
    return Unknown("/proc/self/mounts", f"no {fstype} mount with option {option}")


def detect_rt_group_sched(fs: HostFS) -> Quirk:
    """RT group scheduling: cgroup v1's cpu controller has cpu.rt_runtime_us."""
    meaning = (
        "the kernel has RT group scheduling; a new cpu cgroup gets cpu.rt_runtime_us = 0, "
        "so vCPU threads in libvirt's per-domain cpu cgroup cannot use SCHED_FIFO."
    )
    handling = (
        "Handled: qemu.conf cgroup_controllers leaves out 'cpu' (rtkvm runtime up writes it)."
    )
    where = mount_point(fs, "cgroup", "cpu")
    if isinstance(where, Unknown):
        v2 = mount_point(fs, "cgroup2", "rw")
        if isinstance(v2, Unknown):
            return Quirk("rt_group_sched", None, str(where), meaning, handling)
        # cgroup v2 has no RT group scheduling interface: RT tasks must stay in the root.
        return Quirk("rt_group_sched", False, f"cgroup v2 only at {v2}", meaning, handling)
    present = fs.exists(f"{where}/cpu.rt_runtime_us")
    observed = f"{where}/cpu.rt_runtime_us {'exists' if present else 'absent'}"
    return Quirk("rt_group_sched", present, observed, meaning, handling)


def parse_cap_mask(status_text: str, field: str = "CapEff") -> int | None:
    """The capability mask of a /proc/PID/status text, or None if the field is absent."""
    for line in status_text.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.strip(), 16)
    return None


def detect_no_cap_sys_resource(fs: HostFS) -> Quirk:
    """No CAP_SYS_RESOURCE: libvirt cannot raise QEMU's locked-memory limit."""
    meaning = (
        "no CAP_SYS_RESOURCE: libvirt cannot raise QEMU's memlock limit, so "
        "<memoryBacking><locked/> fails ('cannot limit locked memory ... Operation not "
        "permitted'); guest memory can be paged out."
    )
    handling = "Handled: guests are created without <locked/>; latency may suffer from paging."
    text = fs.read_maybe("/proc/self/status")
    if isinstance(text, Unknown):
        return Quirk("no_cap_sys_resource", None, str(text), meaning, handling)
    mask = parse_cap_mask(text)
    if mask is None:
        return Quirk("no_cap_sys_resource", None, "CapEff missing", meaning, handling)
    has = bool(mask >> CAP_SYS_RESOURCE & 1)
    return Quirk("no_cap_sys_resource", not has, f"CapEff={mask:016x}", meaning, handling)


def parse_memlock(limits_text: str) -> tuple[str, str] | None:
    """(soft, hard) of 'Max locked memory' in /proc/PID/limits, as written there."""
    for line in limits_text.splitlines():
        if line.startswith("Max locked memory"):
            fields = line[len("Max locked memory") :].split()
            if len(fields) >= 2:
                return fields[0], fields[1]
    return None


def detect_memlock(fs: HostFS) -> Quirk:
    """A finite memlock limit: QEMU cannot lock guest memory beyond it."""
    meaning = "the locked-memory limit is finite, so QEMU cannot mlock all guest memory."
    handling = "Handled: no <locked/> in the guest design; cyclictest -m locks inside the guest."
    text = fs.read_maybe("/proc/self/limits")
    if isinstance(text, Unknown):
        return Quirk("memlock_limited", None, str(text), meaning, handling)
    limits = parse_memlock(text)
    if limits is None:
        return Quirk("memlock_limited", None, "no 'Max locked memory' line", meaning, handling)
    soft, hard = limits
    present = "unlimited" not in (soft, hard)
    return Quirk("memlock_limited", present, f"soft={soft} hard={hard}", meaning, handling)


def detect_kvm(fs: HostFS, probe_booted: bool | None, probe_detail: str) -> Quirk:
    """KVM that cannot run a guest: /dev/kvm missing, or the bounded boot probe failed."""
    meaning = (
        "KVM cannot run a Linux guest here; guests run under TCG (emulation), so latency "
        "figures measured in them are MEANINGLESS for real-time."
    )
    handling = "Handled: guests get accel tcg (domain type 'qemu')."
    if not fs.exists("/dev/kvm"):
        return Quirk("kvm_unusable", True, "/dev/kvm does not exist", meaning, handling)
    if probe_booted is None:
        return Quirk("kvm_unusable", None, f"/dev/kvm exists; {probe_detail}", meaning, handling)
    return Quirk("kvm_unusable", not probe_booted, probe_detail, meaning, handling)


def vhost_user_msix_quirk(accel: str) -> Quirk:
    """vhost-user under TCG: QEMU 7.2 segfaults in msix_set_vector_notifiers."""
    return Quirk(
        "vhost_user_tcg_msix",
        accel == "tcg",
        f"accel={accel}",
        "under TCG, QEMU 7.2 crashes (msix_set_vector_notifiers from vhost_net_start) when "
        "the guest brings up a vhost-user virtio-net device.",
        "Handled: vhost-user NICs get vectors=0 (no MSI-X) through <qemu:override>.",
    )


def detect_all(
    fs: HostFS, *, accel: str, probe_booted: bool | None, probe_detail: str
) -> list[Quirk]:
    """Every quirk rtkvm knows, in a stable order."""
    return [
        detect_kvm(fs, probe_booted, probe_detail),
        detect_rt_group_sched(fs),
        detect_no_cap_sys_resource(fs),
        detect_memlock(fs),
        vhost_user_msix_quirk(accel),
    ]


def quirks_report(subject: str, quirks: list[Quirk]) -> Report:
    """Quirks as findings: a present quirk is a handled warning, an unknown one is unknown."""
    findings = []
    for q in quirks:
        status = Status.UNKNOWN if q.present is None else Status.FAIL if q.present else Status.PASS
        message = q.meaning if q.present is not False else "not present on this machine"
        findings.append(
            Finding(
                id=f"runtime.{q.id}",
                severity=Severity.WARNING,
                status=status,
                message=message,
                observed=q.observed,
                expected="absent",
                fix=q.handling if q.present is not False else "",
            )
        )
    return Report(subject, tuple(findings), ok_verdict="usable", bad_verdict="not usable")
