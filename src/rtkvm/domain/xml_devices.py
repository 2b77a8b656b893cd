"""Typed libvirt domain elements: os, features, clock, devices, qemu:override.

Each class converts between itself and XML (``to_element`` /
``from_element``) and nothing else: no defaults chosen for real-time, no
policy (that is :mod:`rtkvm.domain.design`). Elements rtkvm does not model
(a network disk, a tap interface, a video card) are kept verbatim in
``other`` so that any domain can be read, audited and written back. Within
modelled devices, unmodelled children and ``<driver>`` attributes are kept
too; only ``<address>``, ``<alias>`` and the details libvirt fills in inside a
serial ``<target>`` are dropped: libvirt assigns them again.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from rtkvm.domain.xmlutil import (
    QEMU_NS,
    Element,
    append_raw,
    attr_bool,
    attr_int,
    is_element,
    on_off,
    other_attrs,
    others,
    raw,
    req_attr,
    sub,
    yes_no,
)
from rtkvm.errors import DomainXMLError


@dataclass(frozen=True)
class Os:
    """``<os>``: machine type and boot, including direct kernel boot."""

    type: str = "hvm"
    arch: str | None = "x86_64"
    machine: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    boot_devs: tuple[str, ...] = ()
    other: tuple[str, ...] = ()

    def to_element(self) -> Element:
        elem = etree.Element("os")
        sub(elem, "type", {"arch": self.arch, "machine": self.machine}, self.type)
        for path, tag in ((self.kernel, "kernel"), (self.initrd, "initrd")):
            if path is not None:
                sub(elem, tag, text=path)
        if self.cmdline is not None:
            sub(elem, "cmdline", text=self.cmdline)
        for dev in self.boot_devs:
            sub(elem, "boot", {"dev": dev})
        for text in self.other:
            append_raw(elem, text)
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> Os:
        kind = elem.find("type")
        values: dict[str, str | None] = {"kernel": None, "initrd": None, "cmdline": None}
        boots: list[str] = []
        other: list[str] = []
        for child in elem:
            if not is_element(child) or child.tag == "type":
                continue
            if child.tag in values:
                values[child.tag] = child.text or ""
            elif child.tag == "boot":
                boots.append(req_attr(child, "dev"))
            else:
                other.append(raw(child))
        return cls(
            type=(kind.text or "hvm") if kind is not None else "hvm",
            arch=kind.get("arch") if kind is not None else None,
            machine=kind.get("machine") if kind is not None else None,
            boot_devs=tuple(boots),
            other=tuple(other),
            **values,
        )


@dataclass(frozen=True)
class Features:
    """``<features>``: acpi, apic and the PMU switch; other features kept verbatim."""

    acpi: bool = True
    apic: bool = True
    pmu: bool | None = None
    """``<pmu state='off'/>`` is False; None leaves the hypervisor default (on)."""
    other: tuple[str, ...] = ()

    def to_element(self) -> Element:
        elem = etree.Element("features")
        if self.acpi:
            sub(elem, "acpi")
        if self.apic:
            sub(elem, "apic")
        if self.pmu is not None:
            sub(elem, "pmu", {"state": on_off(self.pmu)})
        for text in self.other:
            append_raw(elem, text)
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> Features:
        pmu_elem = elem.find("pmu")
        pmu = None
        if pmu_elem is not None:
            state = attr_bool(pmu_elem, "state")
            pmu = True if state is None else state
        other = tuple(
            raw(c) for c in elem if is_element(c) and c.tag not in ("acpi", "apic", "pmu")
        )
        return cls(
            acpi=elem.find("acpi") is not None,
            apic=elem.find("apic") is not None,
            pmu=pmu,
            other=other,
        )


@dataclass(frozen=True)
class Timer:
    name: str
    present: bool | None = None
    tickpolicy: str | None = None

    def to_element(self) -> Element:
        elem = etree.Element("timer")
        elem.set("name", self.name)
        if self.tickpolicy is not None:
            elem.set("tickpolicy", self.tickpolicy)
        if self.present is not None:
            elem.set("present", yes_no(self.present) or "")
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> Timer:
        return cls(req_attr(elem, "name"), attr_bool(elem, "present"), elem.get("tickpolicy"))


@dataclass(frozen=True)
class Clock:
    offset: str = "utc"
    timers: tuple[Timer, ...] = ()

    def to_element(self) -> Element:
        elem = etree.Element("clock", offset=self.offset)
        for timer in self.timers:
            elem.append(timer.to_element())
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> Clock:
        return cls(
            elem.get("offset", "utc"),
            tuple(Timer.from_element(t) for t in elem.findall("timer")),
        )


@dataclass(frozen=True)
class Disk:
    """A file-backed disk (``<disk type='file'>``)."""

    source_file: str
    target_dev: str = "vda"
    bus: str = "virtio"
    driver_type: str = "raw"
    device: str = "disk"
    readonly: bool = False
    driver_options: tuple[tuple[str, str], ...] = ()
    """Other ``<driver>`` attributes (cache, io, discard, ...)."""
    other: tuple[str, ...] = ()

    def to_element(self) -> Element:
        elem = etree.Element("disk", type="file", device=self.device)
        driver = sub(elem, "driver", {"name": "qemu", "type": self.driver_type})
        for key, value in self.driver_options:
            driver.set(key, value)
        sub(elem, "source", {"file": self.source_file})
        sub(elem, "target", {"dev": self.target_dev, "bus": self.bus})
        if self.readonly:
            sub(elem, "readonly")
        for text in self.other:
            append_raw(elem, text)
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> Disk:
        source, target, driver = elem.find("source"), elem.find("target"), elem.find("driver")
        if source is None or target is None:
            raise DomainXMLError("<disk type='file'> needs <source file=...> and <target dev=...>")
        return cls(
            source_file=req_attr(source, "file"),
            target_dev=req_attr(target, "dev"),
            bus=target.get("bus", "virtio"),
            driver_type=driver.get("type", "raw") if driver is not None else "raw",
            device=elem.get("device", "disk"),
            readonly=elem.find("readonly") is not None,
            driver_options=other_attrs(driver, {"name", "type"}),
            other=others(elem, {"driver", "source", "target", "readonly", "address", "alias"}),
        )


@dataclass(frozen=True)
class VhostUserInterface:
    """``<interface type='vhostuser'>``: a virtio NIC backed by a vhost-user socket."""

    socket_path: str
    mode: str = "server"
    """'server': QEMU creates the socket (OVS's dpdkvhostuserclient connects)."""
    mac: str | None = None
    model: str = "virtio"
    queues: int | None = None
    driver_options: tuple[tuple[str, str], ...] = ()
    """Other ``<driver>`` attributes (rx_queue_size, tx_queue_size, ...)."""
    other: tuple[str, ...] = ()
    """Unmodelled children (mtu, ...), kept verbatim."""

    def to_element(self) -> Element:
        elem = etree.Element("interface", type="vhostuser")
        if self.mac is not None:
            sub(elem, "mac", {"address": self.mac})
        sub(elem, "source", {"type": "unix", "path": self.socket_path, "mode": self.mode})
        sub(elem, "model", {"type": self.model})
        if self.queues is not None or self.driver_options:
            driver = sub(elem, "driver", {"queues": self.queues})
            for key, value in self.driver_options:
                driver.set(key, value)
        for text in self.other:
            append_raw(elem, text)
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> VhostUserInterface:
        source = elem.find("source")
        if source is None:
            raise DomainXMLError("<interface type='vhostuser'> needs <source path=... mode=...>")
        mac, model, driver = elem.find("mac"), elem.find("model"), elem.find("driver")
        return cls(
            socket_path=req_attr(source, "path"),
            mode=source.get("mode", "client"),
            mac=mac.get("address") if mac is not None else None,
            model=model.get("type", "virtio") if model is not None else "virtio",
            queues=attr_int(driver, "queues") if driver is not None else None,
            driver_options=other_attrs(driver, {"queues"}),
            other=others(elem, {"mac", "source", "model", "driver", "address", "alias"}),
        )


@dataclass(frozen=True)
class CharDevice:
    """``<serial>`` or ``<console>`` of type file, pty or unix (a socket QEMU listens on,
    ``mode='bind'``, with its output also logged to ``log_file``)."""

    kind: str = "serial"
    type: str = "pty"
    path: str | None = None
    target_type: str | None = None
    target_port: int | None = 0
    mode: str | None = None
    """``bind`` for a unix socket QEMU serves; None for a file or pty."""
    log_file: str | None = None
    log_append: bool = False
    other: tuple[str, ...] = ()
    """Unmodelled children, kept verbatim."""

    def to_element(self) -> Element:
        elem = etree.Element(self.kind, type=self.type)
        if self.path is not None:
            sub(elem, "source", {"mode": self.mode, "path": self.path})
        if self.log_file is not None:
            sub(elem, "log", {"file": self.log_file, "append": "on" if self.log_append else "off"})
        sub(elem, "target", {"type": self.target_type, "port": self.target_port})
        for text in self.other:
            append_raw(elem, text)
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> CharDevice:
        source, target, log = elem.find("source"), elem.find("target"), elem.find("log")
        return cls(
            kind=str(elem.tag),
            type=elem.get("type", "pty"),
            path=source.get("path") if source is not None else None,
            target_type=target.get("type") if target is not None else None,
            target_port=attr_int(target, "port") if target is not None else None,
            mode=source.get("mode") if source is not None else None,
            log_file=log.get("file") if log is not None else None,
            log_append=log is not None and log.get("append") == "on",
            other=others(elem, {"source", "target", "address", "alias", "log"}),
        )


@dataclass(frozen=True)
class Controller:
    type: str
    model: str | None = None
    index: int | None = None

    def to_element(self) -> Element:
        elem = etree.Element("controller", type=self.type)
        if self.index is not None:
            elem.set("index", str(self.index))
        if self.model is not None:
            elem.set("model", self.model)
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> Controller:
        return cls(req_attr(elem, "type"), elem.get("model"), attr_int(elem, "index"))


@dataclass(frozen=True)
class Devices:
    emulator: str | None = None
    disks: tuple[Disk, ...] = ()
    interfaces: tuple[VhostUserInterface, ...] = ()
    serials: tuple[CharDevice, ...] = ()
    consoles: tuple[CharDevice, ...] = ()
    controllers: tuple[Controller, ...] = ()
    memballoon: str | None = None
    """The ``<memballoon model=...>``; None when the element is absent."""
    memballoon_other: tuple[str, ...] = ()
    """Children of ``<memballoon>`` (stats, ...), kept verbatim."""
    other: tuple[str, ...] = ()

    def to_element(self) -> Element:
        elem = etree.Element("devices")
        if self.emulator is not None:
            sub(elem, "emulator", text=self.emulator)
        for disk in self.disks:
            elem.append(disk.to_element())
        for controller in self.controllers:
            elem.append(controller.to_element())
        for interface in self.interfaces:
            elem.append(interface.to_element())
        for chardev in (*self.serials, *self.consoles):
            elem.append(chardev.to_element())
        for text in self.other:
            append_raw(elem, text)
        if self.memballoon is not None:
            balloon = sub(elem, "memballoon", {"model": self.memballoon})
            for text in self.memballoon_other:
                append_raw(balloon, text)
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> Devices:
        found: dict[str, list[object]] = {
            "disk": [],
            "interface": [],
            "serial": [],
            "console": [],
            "controller": [],
        }
        other: list[str] = []
        emulator: str | None = None
        balloon: str | None = None
        balloon_other: tuple[str, ...] = ()
        for child in elem:
            if not is_element(child):
                continue
            tag, kind = child.tag, child.get("type")
            if tag == "emulator":
                emulator = (child.text or "").strip()
            elif tag == "memballoon":
                balloon = req_attr(child, "model")
                balloon_other = others(child, {"address", "alias"})
            elif tag == "disk" and kind == "file" and _file_disk(child):
                found["disk"].append(Disk.from_element(child))
            elif tag == "interface" and kind == "vhostuser":
                found["interface"].append(VhostUserInterface.from_element(child))
            elif tag in ("serial", "console") and kind in ("file", "pty", "unix"):
                found[str(tag)].append(CharDevice.from_element(child))
            elif tag == "controller" and len(child) == 0:
                found["controller"].append(Controller.from_element(child))
            else:
                other.append(raw(child))
        return cls(
            emulator=emulator,
            disks=tuple(d for d in found["disk"] if isinstance(d, Disk)),
            interfaces=tuple(i for i in found["interface"] if isinstance(i, VhostUserInterface)),
            serials=tuple(s for s in found["serial"] if isinstance(s, CharDevice)),
            consoles=tuple(s for s in found["console"] if isinstance(s, CharDevice)),
            controllers=tuple(c for c in found["controller"] if isinstance(c, Controller)),
            memballoon=balloon,
            memballoon_other=balloon_other,
            other=tuple(other),
        )

    def tag_count(self, tag: str) -> int:
        """How many unmodelled devices of this tag (e.g. 'graphics') the domain has."""
        return sum(1 for text in self.other if etree.fromstring(text).tag == tag)


def _file_disk(elem: Element) -> bool:
    """A file disk with a source file and a target: what :class:`Disk` models."""
    source, target = elem.find("source"), elem.find("target")
    return source is not None and "file" in source.attrib and target is not None


@dataclass(frozen=True)
class QemuProperty:
    name: str
    type: str
    value: str


@dataclass(frozen=True)
class QemuDeviceOverride:
    """Frontend property overrides of one device, found by its alias (net0, ...)."""

    alias: str
    properties: tuple[QemuProperty, ...]


@dataclass(frozen=True)
class QemuOverride:
    """``<qemu:override>``: set QEMU device properties libvirt has no element for."""

    devices: tuple[QemuDeviceOverride, ...]

    def to_element(self) -> Element:
        q = f"{{{QEMU_NS}}}"
        elem = etree.Element(f"{q}override", nsmap={"qemu": QEMU_NS})
        for device in self.devices:
            dev = etree.SubElement(elem, f"{q}device", alias=device.alias)
            frontend = etree.SubElement(dev, f"{q}frontend")
            for prop in device.properties:
                etree.SubElement(
                    frontend, f"{q}property", name=prop.name, type=prop.type, value=prop.value
                )
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> QemuOverride:
        q = f"{{{QEMU_NS}}}"
        devices = []
        for dev in elem.findall(f"{q}device"):
            props = tuple(
                QemuProperty(req_attr(p, "name"), p.get("type", "string"), p.get("value", ""))
                for p in dev.findall(f"{q}frontend/{q}property")
            )
            devices.append(QemuDeviceOverride(req_attr(dev, "alias"), props))
        return cls(tuple(devices))
