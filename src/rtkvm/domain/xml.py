"""Typed libvirt domain XML: the ``<domain>`` and its parser, and the element re-exports.

:class:`Domain` holds the whole guest definition; its parts are typed
elements from :mod:`rtkvm.domain.xml_tuning` (cputune, memoryBacking,
memtune, numatune, cpu) and :mod:`rtkvm.domain.xml_devices` (os, features,
clock, devices, qemu:override), re-exported here. :func:`parse_domain` reads
any libvirt domain (elements rtkvm does not model are kept verbatim),
:meth:`Domain.to_xml` writes one. Memory sizes are held in KiB.

This module must not contain policy: nothing here decides what a real-time
guest needs (that is :mod:`rtkvm.domain.design`) or judges a domain (that is
:mod:`rtkvm.domain.audit`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from rtkvm.cpuset import CpuSet
from rtkvm.domain.xml_devices import Clock, Devices, Features, Os, QemuOverride
from rtkvm.domain.xml_tuning import (
    Cpu,
    CpuFeature,
    CpuTopology,
    CpuTune,
    EmulatorSched,
    HugePage,
    IOThreadPin,
    MemNode,
    MemoryBacking,
    MemTune,
    NumaCell,
    NumaTune,
    VcpuPin,
    VcpuSched,
)
from rtkvm.domain.xmlutil import (
    QEMU_NS,
    Element,
    append_raw,
    attr_cpuset,
    is_element,
    raw,
    req_attr,
    scaled_kib,
    sub,
    text_int,
)
from rtkvm.errors import DomainXMLError

_Parser = Callable[[Element], object]


@dataclass(frozen=True)
class Domain:
    """``<domain>``: the whole guest definition."""

    name: str
    memory_kib: int
    vcpus: int
    type: str = "kvm"
    uuid: str | None = None
    vcpu_placement: str | None = "static"
    vcpu_cpuset: CpuSet | None = None
    iothreads: int = 0
    cputune: CpuTune | None = None
    memory_backing: MemoryBacking | None = None
    memtune: MemTune | None = None
    numatune: NumaTune | None = None
    os: Os = field(default_factory=Os)
    features: Features | None = None
    cpu: Cpu | None = None
    clock: Clock | None = None
    on_poweroff: str | None = None
    on_reboot: str | None = None
    on_crash: str | None = None
    devices: Devices = field(default_factory=Devices)
    qemu_override: QemuOverride | None = None
    other: tuple[str, ...] = ()
    """Top-level elements rtkvm does not model (metadata, resource, sysinfo, ...)."""

    def to_element(self) -> Element:
        nsmap = {"qemu": QEMU_NS} if self.qemu_override is not None else None
        elem = etree.Element("domain", type=self.type, nsmap=nsmap)
        sub(elem, "name", text=self.name)
        if self.uuid is not None:
            sub(elem, "uuid", text=self.uuid)
        sub(elem, "memory", {"unit": "KiB"}, self.memory_kib)
        sub(elem, "currentMemory", {"unit": "KiB"}, self.memory_kib)
        for part in (self.memory_backing, self.memtune):
            if part is not None:
                elem.append(part.to_element())
        cpuset = self.vcpu_cpuset.format() if self.vcpu_cpuset is not None else None
        sub(elem, "vcpu", {"placement": self.vcpu_placement, "cpuset": cpuset}, self.vcpus)
        if self.iothreads:
            sub(elem, "iothreads", text=self.iothreads)
        for part2 in (self.cputune, self.numatune, self.os, self.features, self.cpu, self.clock):
            if part2 is not None:
                elem.append(part2.to_element())
        for tag, value in (
            ("on_poweroff", self.on_poweroff),
            ("on_reboot", self.on_reboot),
            ("on_crash", self.on_crash),
        ):
            if value is not None:
                sub(elem, tag, text=value)
        elem.append(self.devices.to_element())
        for text in self.other:
            append_raw(elem, text)
        if self.qemu_override is not None:
            elem.append(self.qemu_override.to_element())
        return elem

    def to_xml(self) -> str:
        """Indented XML text of the domain."""
        root = self.to_element()
        etree.indent(root, space="  ")
        return etree.tostring(root, encoding="unicode") + "\n"

    @classmethod
    def from_element(cls, elem: Element) -> Domain:
        if elem.tag != "domain":
            raise DomainXMLError(f"expected a <domain> element, found <{elem.tag}>")
        parts: dict[str, object] = {}
        other: list[str] = []
        name: str | None = None
        memory: int | None = None
        vcpu: Element | None = None
        parsers: dict[str, tuple[str, _Parser]] = {
            "cputune": ("cputune", CpuTune.from_element),
            "memoryBacking": ("memory_backing", MemoryBacking.from_element),
            "memtune": ("memtune", MemTune.from_element),
            "numatune": ("numatune", NumaTune.from_element),
            "os": ("os", Os.from_element),
            "features": ("features", Features.from_element),
            "cpu": ("cpu", Cpu.from_element),
            "clock": ("clock", Clock.from_element),
            "devices": ("devices", Devices.from_element),
            f"{{{QEMU_NS}}}override": ("qemu_override", QemuOverride.from_element),
        }
        for child in elem:
            if not is_element(child):
                continue
            tag = str(child.tag)
            if tag == "name":
                name = (child.text or "").strip()
            elif tag == "uuid":
                parts["uuid"] = (child.text or "").strip()
            elif tag == "memory":
                memory = scaled_kib(child)
            elif tag == "currentMemory":
                continue
            elif tag == "vcpu":
                vcpu = child
            elif tag == "iothreads":
                parts["iothreads"] = text_int(child)
            elif tag in ("on_poweroff", "on_reboot", "on_crash"):
                parts[tag] = (child.text or "").strip()
            elif tag in parsers:
                attr, parse = parsers[tag]
                parts[attr] = parse(child)
            else:
                other.append(raw(child))
        if not name:
            raise DomainXMLError("<domain> has no <name>")
        if memory is None:
            raise DomainXMLError(f"domain {name!r} has no <memory>")
        if vcpu is None:
            raise DomainXMLError(f"domain {name!r} has no <vcpu>")
        return cls(
            name=name,
            memory_kib=memory,
            vcpus=text_int(vcpu),
            type=req_attr(elem, "type"),
            vcpu_placement=vcpu.get("placement"),
            vcpu_cpuset=attr_cpuset(vcpu, "cpuset"),
            other=tuple(other),
            **parts,  # type: ignore[arg-type]
        )


def parse_domain(xml: str | bytes, *, source: str = "domain XML") -> Domain:
    """Parse libvirt domain XML; errors name the source and the bad element."""
    data = xml.encode() if isinstance(xml, str) else xml
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise DomainXMLError(f"{source}: not well-formed XML ({exc})") from None
    try:
        return Domain.from_element(root)
    except DomainXMLError as exc:
        raise DomainXMLError(f"{source}: {exc}") from None


__all__ = [
    "Cpu",
    "CpuFeature",
    "CpuTopology",
    "CpuTune",
    "Domain",
    "DomainXMLError",
    "EmulatorSched",
    "HugePage",
    "IOThreadPin",
    "MemNode",
    "MemTune",
    "MemoryBacking",
    "NumaCell",
    "NumaTune",
    "VcpuPin",
    "VcpuSched",
]
