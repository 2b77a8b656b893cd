"""Carry out the API's decisions on this host: create, adopt and delete guests.

Create: the control plane's placement (pCPU per dedicated vCPU, emulator
CPUs, host node per guest cell, the floating CPUs of a mixed guest) arrives
typed (:class:`~rtkvm.wire.placement.PlacementDoc`) and becomes a
:class:`~rtkvm.domain.placement.Placement` unchanged; each network of the
instance is plugged into the switch, the domain is designed
(:func:`~rtkvm.domain.design.design_domain`) with the instance id as UUID,
then defined and started, all by the one guest builder
(:class:`~rtkvm.guest.build.GuestBuilder`). Any failure undoes what the
builder did and becomes an ``error`` outcome carrying the message. A server
with an image boots its own copy-on-write disk, made before the build over
the image's base (fetched once per host, checked by sha256), with a NoCloud
seed disk for cloud-init made at its first build, both kept until the
server is deleted; a probe server boots rtkvm's kernel. Delete: stop and
undefine, unplug, then delete the disk. Adopt (after an agent restart) and
start (a power action): start the domain if it is stopped and re-plug its
NICs; a start without a domain builds it again over the same disk.

This module must not talk to the API (the loop reports outcomes), choose
pCPUs (the scheduler did) or touch a domain that is not the instance's.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from rtkvm.agent.images import BaseImages, disk_path, seed_path
from rtkvm.agent.names import console_socket, domain_name, guest_id, nic_mac
from rtkvm.dataplane.backend import DataPlane
from rtkvm.dataplane.layout import GuestNic
from rtkvm.domain.design import GuestBoot, HostQuirks, VhostUserNic, design_domain
from rtkvm.domain.placement import Placement
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.errors import InputError, RtkvmError
from rtkvm.guest.build import GuestBuilder
from rtkvm.guest.console import printable_tail
from rtkvm.guest.create import Image
from rtkvm.guest.disk import make_overlay, remove_overlay
from rtkvm.guest.hypervisor import DomainState, Hypervisor
from rtkvm.guest.netcmd import GuestNetRun
from rtkvm.guest.run import guest_cmdline
from rtkvm.guest.seed import make_seed
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Topology
from rtkvm.seed.nocloud import SeedNic, meta_data, network_config, user_data
from rtkvm.wire.guest import CONSOLE_MAX, AgentInstance, ConsoleUpload, ReportedState
from rtkvm.wire.keypairs import SeedDoc

log = logging.getLogger("rtkvm.agent.executor")


@dataclass(frozen=True)
class Outcome:
    """What to report for an instance."""

    state: ReportedState
    fault: str | None = None


@dataclass(frozen=True)
class HostView:
    """The plan and topology this agent registered (placements refer to them)."""

    plan: PartitionPlan
    topology: Topology


@dataclass(frozen=True)
class BootConfig:
    """How this host's guests boot: the guest image, accelerator, serial logs."""

    image: Image
    accel: Literal["kvm", "tcg"]
    guest_dir: Path
    quirks: HostQuirks = field(default_factory=HostQuirks)
    allow_unlocked_memory: bool = False
    """Drop <locked/> with a warning on a host that cannot lock guest memory."""
    images: BaseImages | None = None
    """Where the bases of servers' disks are kept; None: this agent boots only the probe."""


GIB = 1 << 30


def placement_of(inst: AgentInstance, host: HostView) -> Placement:
    """The placement the control plane chose, checked against this host's plan."""
    placement = inst.placement.to_placement()
    outside = placement.claimed - host.plan.rt_vcpu
    if outside:
        raise InputError(
            f"instance {inst.id} is pinned to pCPUs {outside} that this host's plan does not "
            f"give to rt_vcpu ({host.plan.rt_vcpu}): re-register the host with its current plan"
        )
    return placement


def guest_nics(inst: AgentInstance) -> list[GuestNic]:
    """One switch port per network of the instance, in the order the user gave."""
    gid = guest_id(inst.id)
    return [GuestNic(gid, index, port.name) for index, port in enumerate(inst.networks)]


def seed_files(inst: AgentInstance, doc: SeedDoc) -> dict[str, bytes]:
    """The NoCloud seed of a new image server: its identity and its user's key and
    user-data, and every NIC by its MAC with the address its user gave, or none."""
    nics = [
        SeedNic(nic_mac(inst.id, index), port.address) for index, port in enumerate(inst.networks)
    ]
    given = base64.b64decode(doc.user_data) if doc.user_data is not None else None
    return {
        "meta-data": meta_data(inst.id, doc.hostname, doc.public_keys).encode(),
        "user-data": user_data(given),
        "network-config": network_config(nics).encode(),
    }


def boot_words(inst: AgentInstance) -> str:
    """What the guest image's /init is told at every boot: the address its user gave the
    first NIC (eth0), if any; the API refuses one on another NIC."""
    first = inst.networks[0] if inst.networks else None
    address = first.address if first is not None else None
    return GuestNetRun(address=address).words() if address is not None else ""


class Executor:
    """Creates, adopts and deletes the guests of instances on this host."""

    def __init__(
        self,
        hypervisor: Hypervisor,
        switch: DataPlane | None,
        host: HostView,
        boot: BootConfig,
    ) -> None:
        self.hypervisor = hypervisor
        self.switch = switch
        self.host = host
        self.boot = boot
        self.builder = GuestBuilder(hypervisor, switch)

    def design_xml(self, inst: AgentInstance, nics: list[VhostUserNic]) -> str:
        """The domain XML of an instance with these switch NICs."""
        spec = RtGuestSpec.model_validate(inst.spec)
        placement = placement_of(inst, self.host)
        name = domain_name(inst.id)
        serial_log = str(self.boot.guest_dir / f"{name}.serial.log")
        socket = console_socket(self.boot.guest_dir, inst.id)
        console = str(socket) if socket is not None else None
        if inst.image_ref is not None:  # the tenant's image, from its own disk
            seed = seed_path(self.boot.guest_dir, name)
            boot = GuestBoot(
                name=name,
                disk=str(disk_path(self.boot.guest_dir, name)),
                disk_format="qcow2",
                seed=str(seed) if seed.exists() else None,
                guest_agent=True,
                serial_log=serial_log,
                console_socket=console,
                nics=tuple(nics),
                accel=self.boot.accel,
                uuid=inst.id,
            )
        else:  # rtkvm's probe: direct kernel boot, told what to do on its command line
            boot = GuestBoot(
                name=name,
                kernel=str(self.boot.image.kernel),
                initrd=str(self.boot.image.initramfs),
                cmdline=guest_cmdline(spec.rt_vcpus, boot_words(inst), accel=self.boot.accel),
                serial_log=serial_log,
                console_socket=console,
                nics=tuple(nics),
                accel=self.boot.accel,
                uuid=inst.id,
            )
        design = design_domain(
            spec,
            placement,
            boot,
            self.boot.quirks,
            allow_unlocked_memory=self.boot.allow_unlocked_memory,
        )
        return design.xml

    def create(self, inst: AgentInstance, *, wait: bool = False) -> Outcome | None:
        """Plug, design, define and start (the guest builder); on failure say why. None:
        not yet, its image's base is still being fetched in the background (``wait``:
        fetch it now instead)."""
        existing = self._domain(inst.id)
        if existing is not None:
            return self.adopt(inst, existing)
        try:
            if not self._disk(inst, wait=wait):
                return None
            nics = self._nics(inst)
            self.builder.build(
                nics,
                lambda plugged: self.design_xml(inst, list(plugged)),
                start=True,
                mac=lambda nic: nic_mac(inst.id, nic.nic),
            )
        except (RtkvmError, ValidationError) as exc:
            return Outcome("error", f"create failed: {exc}")
        return Outcome("active")

    def adopt(self, inst: AgentInstance, dom: DomainState) -> Outcome:
        """Take over a domain that already exists: start it if stopped, re-plug its NICs."""
        try:
            for nic in self._nics(inst):
                self._switch(inst).plug(nic)
            if not dom.running:
                self.hypervisor.start(dom.name)
        except RtkvmError as exc:
            return Outcome("error", f"adopting domain {dom.name} failed: {exc}")
        return Outcome("active")

    def start(self, inst: AgentInstance) -> Outcome:
        """Run the instance's guest: start its domain (NICs plugged again), or build it
        afresh when the domain is missing (a hard reboot of a guest whose create failed or
        whose domain vanished)."""
        existing = self._domain(inst.id)
        if existing is None:
            built = self.create(inst, wait=True)
            assert built is not None  # wait=True fetched the base or raised
            return built
        return self.adopt(inst, existing)

    def console(self, inst: AgentInstance) -> ConsoleUpload:
        """The end of the guest's serial console log as printable text (empty before its
        first boot)."""
        log = self.boot.guest_dir / f"{domain_name(inst.id)}.serial.log"
        text, cut = printable_tail(log, CONSOLE_MAX)
        return ConsoleUpload(text=text, truncated=cut)

    def domain_of(self, inst: AgentInstance) -> DomainState | None:
        """The instance's domain on this host (found by UUID), or None."""
        return self._domain(inst.id)

    def delete(self, inst: AgentInstance) -> Outcome:
        """Stop and undefine the domain, unplug the NICs; 'deleted' only when all went."""
        problems: list[str] = []
        dom = self._domain(inst.id)
        if dom is not None:
            try:
                self.hypervisor.remove(dom.name)
            except RtkvmError as exc:
                problems.append(f"removing domain {dom.name} failed: {exc}")
        if self.switch is not None:  # without a switch this agent plugged nothing
            try:
                problems += self.builder.unplug(self._nics(inst))
            except RtkvmError as exc:
                problems.append(f"unplugging the NICs failed: {exc}")
        if not problems:  # the disk and seed go only with their domain
            name = domain_name(inst.id)
            try:
                remove_overlay(disk_path(self.boot.guest_dir, name))
                remove_overlay(seed_path(self.boot.guest_dir, name))
            except RtkvmError as exc:
                problems.append(str(exc))
            socket = console_socket(self.boot.guest_dir, inst.id)
            if socket is not None:  # QEMU leaves its listening socket behind
                socket.unlink(missing_ok=True)
            self.prune_bases()
        if problems:
            return Outcome("error", "; ".join(problems))
        return Outcome("deleted")

    def prune_bases(self) -> None:
        """Delete image bases no disk uses and nobody used for a day (never fatal)."""
        if self.boot.images is not None:
            try:
                self.boot.images.prune(self.boot.guest_dir)
            except OSError as exc:
                log.warning("pruning image bases failed: %s", exc)

    def _disk(self, inst: AgentInstance, *, wait: bool) -> bool:
        """Make the server's seed (at its first build) and its copy-on-write disk over its
        image's base, unless it has them (a rebuilt domain keeps what its guest wrote);
        False while the base is still being fetched."""
        ref = inst.image_ref
        if ref is None:
            return True
        disk = disk_path(self.boot.guest_dir, domain_name(inst.id))
        seed = seed_path(self.boot.guest_dir, domain_name(inst.id))
        if disk.exists():
            return True
        if self.boot.images is None:
            raise InputError(
                f"server {inst.name} boots image {ref.name} but this agent was started "
                "without a directory for image bases: run `rtkvm agent` (it keeps them under "
                "its guest directory)"
            )
        base = self.boot.images.ensure(ref) if wait else self.boot.images.prepare(ref)
        if base is None:
            return False
        if inst.seed is not None and not seed.exists():
            make_seed(seed, seed_files(inst, inst.seed))
        size = (inst.disk_gb or -(-ref.virtual_size_bytes // GIB)) * GIB
        make_overlay(base, ref.disk_format, disk, size)
        return True

    def _domain(self, instance_id: str) -> DomainState | None:
        for dom in self.hypervisor.domains():
            if dom.uuid == instance_id:
                return dom
        return None

    def _nics(self, inst: AgentInstance) -> list[GuestNic]:
        """The instance's NICs on this host's switch networks (same physnet and VLAN)."""
        nics = guest_nics(inst)
        if not nics:
            return nics
        switch = self._switch(inst)
        for port in inst.networks:  # a network created after `rtkvm net up` is carried now
            if switch.carry(port.name, port.physnet, port.vlan):
                log.info("the switch now carries network %s (%s)", port.name, port.physnet)
        return [
            GuestNic(nic.guest, nic.nic, switch.network_for(port.name, port.physnet, port.vlan))
            for nic, port in zip(nics, inst.networks, strict=True)
        ]

    def _switch(self, inst: AgentInstance) -> DataPlane:
        if self.switch is None:
            raise InputError(
                f"instance {inst.id} has networks but this agent runs without a switch: "
                "start it with `rtkvm net up` and run the agent with --switch-rundir"
            )
        return self.switch
