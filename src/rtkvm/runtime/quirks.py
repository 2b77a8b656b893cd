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
from rtkvm.host.process import (
    LIMITS_PATH,
    MOUNTS_PATH,
    STATUS_PATH,
    parse_capabilities,
    parse_cgroup_mounts,
    parse_memlock,
)
from rtkvm.hostfs import HostFS, Unknown


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
    """Mount point of the first cgroup ``fstype`` mount with controller (or option) ``option``."""
    mounts = fs.read_maybe(MOUNTS_PATH)
    if isinstance(mounts, Unknown):
        return mounts
    for mount in parse_cgroup_mounts(mounts):
        if mount.fstype == fstype and (option in mount.controllers or fstype == "cgroup2"):
            return mount.path
    return Unknown(MOUNTS_PATH, f"no {fstype} mount with {option}")


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


def detect_no_cap_sys_resource(fs: HostFS) -> Quirk:
    """No CAP_SYS_RESOURCE: libvirt cannot raise QEMU's locked-memory limit."""
    meaning = (
        "no CAP_SYS_RESOURCE: libvirt cannot raise QEMU's memlock limit, so "
        "<memoryBacking><locked/> fails ('cannot limit locked memory ... Operation not "
        "permitted'); guest memory can be paged out."
    )
    handling = "Handled: guests are created without <locked/>; latency may suffer from paging."
    text = fs.read_maybe(STATUS_PATH)
    if isinstance(text, Unknown):
        return Quirk("no_cap_sys_resource", None, str(text), meaning, handling)
    try:
        caps = parse_capabilities(text)
    except ValueError as exc:
        return Quirk("no_cap_sys_resource", None, str(exc), meaning, handling)
    has = "CAP_SYS_RESOURCE" in caps
    observed = f"CAP_SYS_RESOURCE {'in' if has else 'not in'} CapEff"
    return Quirk("no_cap_sys_resource", not has, observed, meaning, handling)


def detect_memlock(fs: HostFS) -> Quirk:
    """A finite memlock limit: QEMU cannot lock guest memory beyond it."""
    meaning = "the locked-memory limit is finite, so QEMU cannot mlock all guest memory."
    handling = "Handled: no <locked/> in the guest design; cyclictest -m locks inside the guest."
    text = fs.read_maybe(LIMITS_PATH)
    if isinstance(text, Unknown):
        return Quirk("memlock_limited", None, str(text), meaning, handling)
    try:
        soft, hard = parse_memlock(text)
    except ValueError as exc:
        return Quirk("memlock_limited", None, str(exc), meaning, handling)
    present = soft is not None and hard is not None  # None: unlimited
    observed = f"soft={_bytes(soft)} hard={_bytes(hard)}"
    return Quirk("memlock_limited", present, observed, meaning, handling)


def _bytes(limit: int | None) -> str:
    return "unlimited" if limit is None else str(limit)


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
