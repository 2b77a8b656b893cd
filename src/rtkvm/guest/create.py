"""Compose a runnable RT guest: flavor + partition plan + image + host quirks -> design.

Turns the built guest image (kernel, initramfs), the host's partition plan
and topology, the detected quirks (KVM usable or not, locked memory possible
or not) and a flavor into the domain design of :mod:`rtkvm.domain.design`,
with every warning of the design and of the quirks collected for the user.
This module must not render XML itself (the design does), talk to libvirt
(lifecycle does) or probe the host (the caller passes the quirks in).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rtkvm.domain.design import GuestBoot, GuestDesign, HostQuirks, design_domain
from rtkvm.domain.placement import place
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.guest.run import guest_cmdline
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Topology
from rtkvm.runtime.quirks import Quirk

DEFAULT_GUEST_DIR = Path("/var/lib/rtkvm/guests")


@dataclass(frozen=True)
class Image:
    kernel: Path
    initramfs: Path


@dataclass(frozen=True)
class CreatePlan:
    design: GuestDesign
    serial_log: Path
    warnings: tuple[str, ...]

    @property
    def xml(self) -> str:
        return self.design.xml


def default_spec(name: str = "rt", memory_mib: int = 256) -> RtGuestSpec:
    """The smallest useful RT guest: vCPU 1 real-time on a pCPU of its own, vCPU 0 (the
    guest's housekeeping) floating with the emulator on the host's housekeeping CPUs
    (``hw:cpu_policy=mixed``), small pages. It needs one RT pCPU."""
    return RtGuestSpec(
        name=name,
        vcpus=2,
        memory_mib=memory_mib,
        realtime_mask="^0",
        cpu_policy="mixed",
        page_size="4k",
    )


def plan_guest(
    name: str,
    spec: RtGuestSpec,
    plan: PartitionPlan,
    topology: Topology,
    image: Image,
    quirks: list[Quirk],
    *,
    accel: Literal["kvm", "tcg"],
    guest_dir: Path = DEFAULT_GUEST_DIR,
) -> CreatePlan:
    """The design of guest ``name``; quirks present become warnings and design inputs."""
    present = {q.id: q for q in quirks if q.present}
    no_lock = "no_cap_sys_resource" in present
    serial_log = guest_dir / f"{name}.serial.log"
    boot = GuestBoot(
        name=name,
        kernel=str(image.kernel),
        initrd=str(image.initramfs),
        cmdline=guest_cmdline(spec.rt_vcpus),
        serial_log=str(serial_log),
        accel=accel,
    )
    host = HostQuirks(locked_memory=not no_lock, vhost_user_msix_broken=None)
    warnings = [q.warning for q in quirks if q.present and q.id != "vhost_user_tcg_msix"]
    placement = place(spec, plan, topology, check_hugepages=spec.page_size != "4k")
    design = design_domain(spec, placement, boot, host, allow_unlocked_memory=no_lock)
    warnings += design.warnings
    return CreatePlan(design, serial_log, tuple(warnings))
