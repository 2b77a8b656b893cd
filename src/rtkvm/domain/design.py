"""Design of a real-time libvirt domain: the policy, in one place.

:func:`design_domain` turns an :class:`RtGuestSpec` (the flavor), a
:class:`Placement` (the pinning) and a :class:`GuestBoot` (kernel or disk,
serial log, vhost-user NICs, accelerator) into a typed :class:`Domain`, with
the host's quirks (:class:`HostQuirks`) taken into account and every
deviation from the flavor returned as a warning, never silently.
:func:`design_guest` also does the placement.

What an RT guest gets here: one pCPU per vCPU; the RT vCPUs at SCHED_FIFO/RR
with the flavor's priority; emulator and I/O threads on the placement's
emulator CPUs (a guest with a disk gets at least one I/O thread, which serves
it: :data:`DISK_DRIVER`); hugepages, locked, unshared and preallocated memory
(``<allocation mode='immediate'/>``: no page faults later); memory shared (memfd,
``memAccess='shared'``) when it has vhost-user NICs; NUMA cells bound strictly
to the chosen host nodes; host-passthrough with tsc-deadline required under
KVM (a named model under TCG, where host-passthrough does not exist); PMU
off; no balloon, no USB, no graphics; ``vectors=0`` on vhost-user NICs where
QEMU's MSI-X path crashes (QEMU 7.2 under TCG).

This module must not render XML by hand (the element classes do), read the
host, or talk to libvirt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from rtkvm import priorities
from rtkvm.cpuset import CpuSet
from rtkvm.domain.placement import Placement, place
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.domain.xml import (
    Cpu,
    CpuFeature,
    CpuTopology,
    CpuTune,
    Domain,
    HugePage,
    IOThreadPin,
    MemNode,
    MemoryBacking,
    NumaCell,
    NumaTune,
    VcpuPin,
    VcpuSched,
)
from rtkvm.domain.xml_devices import (
    CharDevice,
    Clock,
    Controller,
    Devices,
    Disk,
    Features,
    Os,
    QemuDeviceOverride,
    QemuOverride,
    QemuProperty,
    Timer,
    VhostUserInterface,
)
from rtkvm.errors import InputError, SpecError
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Topology

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}\Z")

DEFAULT_EMULATOR = "/usr/bin/qemu-system-x86_64"

GUEST_AGENT_CHANNEL = (
    "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
)
"""The virtio-serial port qemu-guest-agent listens on (libvirt picks the host socket): how a
tenant's running guest is measured without a reboot (rtkvm.guest.qga)."""

DISK_DRIVER: tuple[tuple[str, str], ...] = (
    ("cache", "none"),
    ("io", "native"),
    ("discard", "unmap"),
    ("iothread", "1"),
)
"""The disk's ``<driver>``: O_DIRECT (no host page cache whose writeback and reclaim stall
at random times), Linux native AIO (needs cache=none), TRIM kept thin, and its requests
served by I/O thread 1, pinned to the housekeeping CPUs with the emulator: block I/O never
runs in a vCPU thread or on an RT pCPU."""


@dataclass(frozen=True)
class VhostUserNic:
    """A NIC on the host's vhost-user switch (OVS-DPDK dpdkvhostuserclient: QEMU is server)."""

    socket_path: str
    mac: str | None = None
    mode: Literal["server", "client"] = "server"
    queues: int = 1


@dataclass(frozen=True)
class GuestBoot:
    """How this guest boots and what it is wired to (not part of the flavor)."""

    name: str
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    disk: str | None = None
    disk_format: Literal["raw", "qcow2"] = "raw"
    seed: str | None = None
    """A read-only raw disk after the boot disk (vdb): the server's cloud-init seed."""
    guest_agent: bool = False
    """Give the guest qemu-guest-agent's channel."""
    serial_log: str | None = None
    """Serial console to this file; None gives a pty."""
    console_socket: str | None = None
    """A unix socket QEMU listens on for the serial console (the agent's relay connects to
    it), its output still written to ``serial_log``; None: the serial goes to the file only."""
    nics: tuple[VhostUserNic, ...] = ()
    accel: Literal["kvm", "tcg"] = "kvm"
    uuid: str | None = None
    emulator: str = DEFAULT_EMULATOR
    machine: str = "pc"
    tcg_cpu_model: str = "qemu64"


@dataclass(frozen=True)
class HostQuirks:
    """What the host (libvirt + QEMU + kernel) can and cannot do."""

    locked_memory: bool = True
    """False when libvirt cannot raise the memlock limit (no CAP_SYS_RESOURCE)."""
    vhost_user_msix_broken: bool | None = None
    """True when QEMU crashes bringing up MSI-X on vhost-user NICs; None: True under TCG."""


@dataclass(frozen=True)
class GuestDesign:
    domain: Domain
    placement: Placement
    warnings: tuple[str, ...] = field(default=())

    @property
    def xml(self) -> str:
        return self.domain.to_xml()


def design_domain(
    spec: RtGuestSpec,
    placement: Placement,
    boot: GuestBoot,
    host: HostQuirks = HostQuirks(),
    *,
    allow_unlocked_memory: bool = False,
) -> GuestDesign:
    """The RT domain for ``spec`` pinned as ``placement``, booting as ``boot``.

    Raises SpecError/InputError for a combination that cannot work (vhost-user
    NICs without shared memory; locked memory on a host that cannot lock it,
    unless ``allow_unlocked_memory``, which drops ``<locked/>`` and warns).
    """
    _check_boot(boot)
    _check_placement(spec, placement)
    warnings: list[str] = []
    shared = spec.shared_memory if spec.shared_memory is not None else bool(boot.nics)
    if boot.nics and not shared:
        raise SpecError(
            f"guest {boot.name!r} has vhost-user NICs, which need guest memory shared with the "
            "switch, but the flavor sets shared_memory=false: drop it or set it to true"
        )
    locked = spec.locked_memory
    if locked and not host.locked_memory:
        if not allow_unlocked_memory:
            raise SpecError(
                "the flavor asks for locked memory (hw:locked_memory) but this host cannot "
                "lock guest memory (libvirt lacks CAP_SYS_RESOURCE to raise the memlock "
                "limit): run libvirtd with CAP_SYS_RESOURCE, use a flavor with "
                "hw:locked_memory=false, or accept unlocked memory explicitly "
                "(rtkvm guest design --allow-unlocked-memory)"
            )
        locked = False
        warnings.append(
            "memory is NOT locked (<locked/> dropped): this host cannot lock guest memory; "
            "page faults on swapped-out or migrated pages can cause latency spikes"
        )
    band = priorities.band_problem(spec.priority) if spec.rt_vcpus else None
    if band is not None:
        warnings.append(f"RT vCPU {band}")
    kvm = boot.accel == "kvm"
    if not kvm:
        warnings.append(
            "accel=tcg: QEMU emulates the CPU; the guest is functionally real-time-configured "
            "but its latencies mean nothing"
        )
    iothreads = max(spec.iothreads, 1) if boot.disk is not None else spec.iothreads
    msix_broken = host.vhost_user_msix_broken
    if msix_broken is None:
        msix_broken = not kvm
    domain = Domain(
        name=boot.name,
        uuid=boot.uuid,
        type="kvm" if kvm else "qemu",
        memory_kib=spec.memory_kib,
        vcpus=spec.vcpus,
        iothreads=iothreads,
        cputune=_cputune(spec, placement, iothreads),
        memory_backing=_memory_backing(spec, locked, shared),
        numatune=_numatune(spec, placement),
        os=Os(
            machine=boot.machine,
            kernel=boot.kernel,
            initrd=boot.initrd,
            cmdline=boot.cmdline,
            boot_devs=("hd",) if boot.kernel is None else (),
        ),
        features=Features(acpi=True, apic=True, pmu=spec.pmu),
        cpu=_cpu(spec, kvm, shared, boot.tcg_cpu_model),
        clock=Clock(
            "utc",
            (
                Timer("rtc", tickpolicy="catchup"),
                Timer("pit", tickpolicy="delay"),
                Timer("hpet", present=False),
            ),
        ),
        on_poweroff="destroy",
        on_reboot="restart",
        on_crash="destroy",
        devices=_devices(boot),
        qemu_override=_msix_override(boot) if msix_broken and boot.nics else None,
    )
    if msix_broken and boot.nics:
        warnings.append(
            "vhost-user NICs get vectors=0 (no MSI-X): QEMU crashes bringing up MSI-X on "
            "vhost-user under this accelerator; interrupts use legacy INTx"
        )
    return GuestDesign(domain, placement, tuple(warnings))


def design_guest(
    spec: RtGuestSpec,
    plan: PartitionPlan,
    topology: Topology,
    boot: GuestBoot,
    *,
    allocated: CpuSet | None = None,
    host: HostQuirks = HostQuirks(),
    allow_unlocked_memory: bool = False,
    check_hugepages: bool = True,
) -> GuestDesign:
    """Place the guest on the host, then design its domain."""
    placement = place(spec, plan, topology, allocated, check_hugepages=check_hugepages)
    return design_domain(spec, placement, boot, host, allow_unlocked_memory=allow_unlocked_memory)


def _check_boot(boot: GuestBoot) -> None:
    if not _NAME.match(boot.name):
        raise InputError(
            f"guest name {boot.name!r}: use letters, digits, '_', '.', '+', '-' (max 63), "
            "starting with a letter or digit"
        )
    if (boot.kernel is None) == (boot.disk is None):
        raise InputError(
            f"guest {boot.name!r}: give either a kernel (direct kernel boot) or a disk image"
        )
    if boot.seed is not None and boot.disk is None:
        raise InputError(f"guest {boot.name!r}: a seed disk goes with a boot disk")
    if boot.kernel is None and (boot.initrd is not None or boot.cmdline is not None):
        raise InputError(f"guest {boot.name!r}: an initrd or cmdline needs a kernel")
    for i, nic in enumerate(boot.nics):
        if not nic.socket_path.startswith("/"):
            raise InputError(f"NIC {i}: socket path {nic.socket_path!r} must be absolute")
        if nic.mac is not None and not _MAC.match(nic.mac):
            raise InputError(f"NIC {i}: MAC {nic.mac!r} is not like 52:54:00:12:34:56 (lower case)")
        if nic.queues < 1:
            raise InputError(f"NIC {i}: queues must be at least 1, got {nic.queues}")


def _check_placement(spec: RtGuestSpec, placement: Placement) -> None:
    vcpus = CpuSet(v for v, _ in placement.vcpu_pins)
    dedicated = spec.dedicated_vcpus
    if (
        vcpus != dedicated
        or len(placement.vcpu_pcpus) != len(dedicated)
        or placement.floating_vcpus != spec.all_vcpus - dedicated
        or (placement.floating_vcpus and not placement.floating_cpus)
    ):
        raise InputError(
            f"placement pins vCPUs {vcpus} to pCPUs {placement.vcpu_pcpus} and floats "
            f"{placement.floating_vcpus or 'none'}, but flavor {spec.name!r} "
            f"(hw:cpu_policy={spec.cpu_policy}) needs vCPUs {dedicated} each on its own "
            "pCPU: place it again"
        )
    if len(placement.cell_nodes) != spec.numa_nodes:
        raise InputError(
            f"placement has {len(placement.cell_nodes)} NUMA cell(s), flavor {spec.name!r} "
            f"has {spec.numa_nodes}: place it again"
        )


def _cputune(spec: RtGuestSpec, placement: Placement, iothreads: int) -> CpuTune:
    return CpuTune(
        vcpupins=tuple(
            sorted(
                [VcpuPin(v, CpuSet([p])) for v, p in placement.vcpu_pins]
                + [VcpuPin(v, placement.floating_cpus) for v in placement.floating_vcpus],
                key=lambda pin: pin.vcpu,
            )
        ),
        emulatorpin=placement.emulator_cpus,
        iothreadpins=tuple(
            IOThreadPin(i, placement.emulator_cpus) for i in range(1, iothreads + 1)
        ),
        vcpuscheds=tuple(
            VcpuSched(CpuSet([v]), spec.sched_policy, spec.priority) for v in spec.rt_vcpus
        ),
    )


def _memory_backing(spec: RtGuestSpec, locked: bool, shared: bool) -> MemoryBacking:
    pages = (HugePage(spec.page_size_kib),) if spec.page_size != "4k" else ()
    return MemoryBacking(
        hugepages=pages,
        nosharepages=spec.nosharepages,
        locked=locked,
        source_type="memfd" if shared else None,
        access_mode="shared" if shared else None,
        allocation_mode="immediate",
    )


def _numatune(spec: RtGuestSpec, placement: Placement) -> NumaTune:
    return NumaTune(
        memory_mode="strict",
        memory_nodeset=placement.host_nodes,
        memnodes=tuple(
            MemNode(i, "strict", CpuSet([node])) for i, node in enumerate(placement.cell_nodes)
        ),
    )


def _cpu(spec: RtGuestSpec, kvm: bool, shared: bool, tcg_model: str) -> Cpu:
    cells = tuple(
        NumaCell(c.id, c.vcpus, c.memory_kib, "shared" if shared else None) for c in spec.cells()
    )
    topology = CpuTopology(sockets=spec.numa_nodes, cores=spec.vcpus // spec.numa_nodes, threads=1)
    if kvm:
        return Cpu(
            mode="host-passthrough",
            check="none",
            migratable=False,
            topology=topology,
            features=(CpuFeature("tsc-deadline", "require"),),
            cells=cells,
        )
    return Cpu(
        mode="custom",
        match="exact",
        check="none",
        model=tcg_model,
        model_fallback="forbid",
        topology=topology,
        cells=cells,
    )


def _serial(boot: GuestBoot, kind: str, target_type: str | None) -> CharDevice:
    if boot.console_socket is not None:
        return CharDevice(
            kind, "unix", boot.console_socket, target_type, 0, mode="bind", log_file=boot.serial_log
        )
    console_type = "file" if boot.serial_log is not None else "pty"
    return CharDevice(kind, console_type, boot.serial_log, target_type, 0)


def _devices(boot: GuestBoot) -> Devices:
    disks: tuple[Disk, ...] = ()
    if boot.disk is not None:
        disks = (Disk(boot.disk, driver_type=boot.disk_format, driver_options=DISK_DRIVER),)
    if boot.seed is not None:
        seed_driver = tuple(o for o in DISK_DRIVER if o[0] != "discard")
        disks += (Disk(boot.seed, "vdb", readonly=True, driver_options=seed_driver),)
    return Devices(
        emulator=boot.emulator,
        disks=disks,
        controllers=(Controller("usb", model="none"),),
        interfaces=tuple(
            VhostUserInterface(
                n.socket_path, n.mode, n.mac, "virtio", n.queues if n.queues > 1 else None
            )
            for n in boot.nics
        ),
        serials=(_serial(boot, "serial", None),),
        consoles=(_serial(boot, "console", "serial"),),
        memballoon="none",
        other=(GUEST_AGENT_CHANNEL,) if boot.guest_agent else (),
    )


def _msix_override(boot: GuestBoot) -> QemuOverride:
    """libvirt names the interfaces net0, net1, ... in order: the only interfaces are ours."""
    vectors = (QemuProperty("vectors", "unsigned", "0"),)
    return QemuOverride(
        tuple(QemuDeviceOverride(f"net{i}", vectors) for i in range(len(boot.nics)))
    )
