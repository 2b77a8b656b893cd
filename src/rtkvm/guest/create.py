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

from rtkvm.cpuset import CpuSet
from rtkvm.domain.design import GuestBoot, GuestDesign, HostQuirks, VhostUserNic, design_domain
from rtkvm.domain.placement import place
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.errors import InputError
from rtkvm.footprint import GUEST_DIR
from rtkvm.guest.netcmd import GuestNetRun
from rtkvm.guest.run import guest_cmdline
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Topology
from rtkvm.runtime.quirks import Quirk

DEFAULT_GUEST_DIR = Path(GUEST_DIR.path)


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
    nics: tuple[VhostUserNic, ...] = (),
    address: str | None = None,
) -> CreatePlan:
    """The design of guest ``name``; quirks present become warnings and design inputs.

    ``nics``: vhost-user NICs (sockets from the data plane's ``plug``); ``address``:
    the static ADDR/PREFIX the image's /init gives eth0 (unmanaged networks have no DHCP).
    """
    if address is not None and not nics:
        raise InputError(f"guest {name!r}: an address needs a NIC; plug it into a network")
    present = {q.id: q for q in quirks if q.present}
    no_lock = "no_cap_sys_resource" in present
    serial_log = guest_dir / f"{name}.serial.log"
    boot = GuestBoot(
        name=name,
        kernel=str(image.kernel),
        initrd=str(image.initramfs),
        cmdline=guest_cmdline(spec.rt_vcpus, GuestNetRun(address=address).words(), accel=accel),
        serial_log=str(serial_log),
        accel=accel,
        nics=nics,
    )
    host = HostQuirks(locked_memory=not no_lock, vhost_user_msix_broken=None)
    warnings = [q.warning for q in quirks if q.present and q.id != "vhost_user_tcg_msix"]
    placement = place(spec, plan, topology, check_hugepages=spec.page_size != "4k")
    design = design_domain(spec, placement, boot, host, allow_unlocked_memory=no_lock)
    warnings += design.warnings
    return CreatePlan(design, serial_log, tuple(warnings))


def shared_pcpus_warning(plans: dict[str, CreatePlan]) -> str | None:
    """A loud warning when guests planned one by one got the same dedicated pCPUs, or None.

    Guests created independently (``rtkvm guest create`` keeps no allocations) are each
    placed on the whole plan; on a host too small for all of them their RT vCPUs share
    pCPUs. That is acceptable for a functional test only, and must be said.
    """
    owners: dict[int, list[str]] = {}
    for name, plan in sorted(plans.items()):
        for cpu in plan.design.placement.claimed:
            owners.setdefault(cpu, []).append(name)
    shared = {cpu: names for cpu, names in owners.items() if len(names) > 1}
    if not shared:
        return None
    where = "; ".join(f"pCPU {c}: {', '.join(n)}" for c, n in sorted(shared.items()))
    return (
        f"WARNING: RT vCPUs of several guests share dedicated pCPUs ({where}; "
        f"{CpuSet(shared)} overcommitted). This host has too few CPUs for one RT pCPU per "
        "guest; the guests work, but every latency figure measured this way means nothing "
        "for real-time behaviour."
    )
