"""The agent's check of a running guest of its host: RT settings in effect, from libvirt and /proc.

:class:`LiveChecker` looks the instance's domain up by its UUID (the
instance id), reads its live XML and its QEMU process id (libvirt's pid file,
through the HostFS), and judges both with :func:`rtkvm.guest.rtcheck.check_live`
against the host's partition and its quirks (a failure a present quirk
explains is named as the host's waiver, not counted); a shared (non-RT)
guest with :func:`~rtkvm.guest.rtcheck.check_shared` instead: kept off the
RT CPUs. The answer is the
wire's :class:`~rtkvm.wire.guest.RtCheckDoc`. This module reads only: it must
not change a thread or a domain.
"""

from __future__ import annotations

from collections.abc import Callable

from rtkvm.domain.audit import AuditHost
from rtkvm.domain.xml import parse_domain
from rtkvm.guest.rtcheck import check_live, check_shared
from rtkvm.hostfs import HostFS
from rtkvm.wire.guest import AgentInstance, RtCheckDoc

QEMU_PID_DIR = "/var/run/libvirt/qemu"

Lookup = Callable[[str], tuple[str, str] | None]
"""Instance id -> (domain name, live XML) of its running domain, None when none runs."""


def libvirt_lookup(uri: str) -> Lookup:
    def lookup(instance_id: str) -> tuple[str, str] | None:
        import libvirt

        from rtkvm.guest.lifecycle import connect

        with connect(uri) as conn:
            try:
                dom = conn.lookupByUUIDString(instance_id)
            except libvirt.libvirtError:
                return None
            if not dom.isActive():
                return None
            return dom.name(), dom.XMLDesc(0)

    return lookup


class LiveChecker:
    """Checks this host's running guests against its partition plan and quirks."""

    def __init__(self, lookup: Lookup, fs: HostFS, host: AuditHost, quirks: set[str]) -> None:
        self.lookup = lookup
        self.fs = fs
        self.host = host
        self.quirks = quirks

    def check(self, inst: AgentInstance) -> RtCheckDoc | None:
        found = self.lookup(inst.id)
        if found is None:
            return None
        name, xml = found
        pid_text = self.fs.read_maybe(f"{QEMU_PID_DIR}/{name}.pid")
        if not isinstance(pid_text, str) or not pid_text.strip().isdigit():
            return RtCheckDoc(
                state="degraded",
                reasons=[f"domain {name} runs but its QEMU process id cannot be read"],
            )
        subject = f"instance {inst.name} ({inst.id}, domain {name})"
        domain = parse_domain(xml, source=f"domain {name}")
        if inst.spec.get("cpu_policy") == "shared":  # an ordinary guest beside RT ones
            done = check_shared(
                domain,
                int(pid_text.strip()),
                fs=self.fs,
                housekeeping=self.host.housekeeping,
                subject=subject,
            )
            return RtCheckDoc(state=done.state, reasons=list(done.reasons))
        done = check_live(
            domain,
            int(pid_text.strip()),
            fs=self.fs,
            host=self.host,
            quirks=self.quirks,
            subject=subject,
        )
        return RtCheckDoc(state=done.state, reasons=list(done.reasons), waived=done.waived)
