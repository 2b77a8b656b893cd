"""Typed libvirt domain XML: the elements rtkvm renders and audits, and the domain.

Frozen dataclasses with ``to_element`` / ``from_element`` for ``<domain>``,
``<cputune>`` (vcpupin, emulatorpin, iothreadpin, vcpusched, emulatorsched),
``<memoryBacking>``, ``<memtune>``, ``<numatune>`` and ``<cpu>`` (model,
features, topology, NUMA cells); devices and the rest live in
:mod:`rtkvm.domain.xml_devices`. :func:`parse_domain` reads any libvirt
domain (elements rtkvm does not model are kept verbatim), :meth:`Domain.to_xml`
writes one. Memory sizes are held in KiB, libvirt's default unit.

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
from rtkvm.domain.xmlutil import (
    QEMU_NS,
    DomainXMLError,
    Element,
    append_raw,
    attr_cpuset,
    attr_int,
    is_element,
    raw,
    req_attr,
    req_cpuset,
    req_int,
    scaled_kib,
    sub,
    text_int,
    to_kib,
)


@dataclass(frozen=True)
class VcpuPin:
    vcpu: int
    cpuset: CpuSet


@dataclass(frozen=True)
class IOThreadPin:
    iothread: int
    cpuset: CpuSet


@dataclass(frozen=True)
class VcpuSched:
    """``<vcpusched vcpus=... scheduler=fifo|rr|batch|idle priority=N>``."""

    vcpus: CpuSet
    scheduler: str
    priority: int | None = None


@dataclass(frozen=True)
class EmulatorSched:
    scheduler: str
    priority: int | None = None


@dataclass(frozen=True)
class CpuTune:
    vcpupins: tuple[VcpuPin, ...] = ()
    emulatorpin: CpuSet | None = None
    iothreadpins: tuple[IOThreadPin, ...] = ()
    vcpuscheds: tuple[VcpuSched, ...] = ()
    emulatorsched: EmulatorSched | None = None

    def to_element(self) -> Element:
        elem = etree.Element("cputune")
        for pin in self.vcpupins:
            sub(elem, "vcpupin", {"vcpu": pin.vcpu, "cpuset": pin.cpuset.format()})
        if self.emulatorpin is not None:
            sub(elem, "emulatorpin", {"cpuset": self.emulatorpin.format()})
        for io in self.iothreadpins:
            sub(elem, "iothreadpin", {"iothread": io.iothread, "cpuset": io.cpuset.format()})
        for sched in self.vcpuscheds:
            sub(
                elem,
                "vcpusched",
                {
                    "vcpus": sched.vcpus.format(),
                    "scheduler": sched.scheduler,
                    "priority": sched.priority,
                },
            )
        if self.emulatorsched is not None:
            sub(
                elem,
                "emulatorsched",
                {
                    "scheduler": self.emulatorsched.scheduler,
                    "priority": self.emulatorsched.priority,
                },
            )
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> CpuTune:
        emulator = elem.find("emulatorpin")
        esched = elem.find("emulatorsched")
        return cls(
            vcpupins=tuple(
                VcpuPin(req_int(e, "vcpu"), req_cpuset(e, "cpuset"))
                for e in elem.findall("vcpupin")
            ),
            emulatorpin=req_cpuset(emulator, "cpuset") if emulator is not None else None,
            iothreadpins=tuple(
                IOThreadPin(req_int(e, "iothread"), req_cpuset(e, "cpuset"))
                for e in elem.findall("iothreadpin")
            ),
            vcpuscheds=tuple(
                VcpuSched(req_cpuset(e, "vcpus"), req_attr(e, "scheduler"), attr_int(e, "priority"))
                for e in elem.findall("vcpusched")
            ),
            emulatorsched=(
                EmulatorSched(req_attr(esched, "scheduler"), attr_int(esched, "priority"))
                if esched is not None
                else None
            ),
        )


@dataclass(frozen=True)
class HugePage:
    size_kib: int
    nodeset: CpuSet | None = None
    """Guest NUMA cells this page size applies to (None: all)."""


@dataclass(frozen=True)
class MemoryBacking:
    hugepages: tuple[HugePage, ...] = ()
    nosharepages: bool = False
    locked: bool = False
    source_type: str | None = None
    """'memfd', 'file' or 'anonymous'; None leaves libvirt's default."""
    access_mode: str | None = None
    """'shared' or 'private'; vhost-user needs 'shared'."""
    allocation_mode: str | None = None
    """'immediate' or 'ondemand'."""

    def to_element(self) -> Element:
        elem = etree.Element("memoryBacking")
        if self.hugepages:
            pages = sub(elem, "hugepages")
            for page in self.hugepages:
                nodeset = page.nodeset.format() if page.nodeset is not None else None
                sub(pages, "page", {"size": page.size_kib, "unit": "KiB", "nodeset": nodeset})
        if self.nosharepages:
            sub(elem, "nosharepages")
        if self.locked:
            sub(elem, "locked")
        if self.source_type is not None:
            sub(elem, "source", {"type": self.source_type})
        if self.access_mode is not None:
            sub(elem, "access", {"mode": self.access_mode})
        if self.allocation_mode is not None:
            sub(elem, "allocation", {"mode": self.allocation_mode})
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> MemoryBacking:
        pages: list[HugePage] = []
        hp = elem.find("hugepages")
        if hp is not None:
            for page in hp.findall("page"):
                size = to_kib(req_int(page, "size"), page.get("unit"), "<page>")
                pages.append(HugePage(size, attr_cpuset(page, "nodeset")))
            if not pages:
                pages.append(HugePage(0))  # <hugepages/>: the host's default size
        source, access, alloc = elem.find("source"), elem.find("access"), elem.find("allocation")
        return cls(
            hugepages=tuple(pages),
            nosharepages=elem.find("nosharepages") is not None,
            locked=elem.find("locked") is not None,
            source_type=source.get("type") if source is not None else None,
            access_mode=access.get("mode") if access is not None else None,
            allocation_mode=alloc.get("mode") if alloc is not None else None,
        )


@dataclass(frozen=True)
class MemTune:
    hard_limit_kib: int | None = None
    soft_limit_kib: int | None = None
    swap_hard_limit_kib: int | None = None

    _TAGS = (
        ("hard_limit", "hard_limit_kib"),
        ("soft_limit", "soft_limit_kib"),
        ("swap_hard_limit", "swap_hard_limit_kib"),
    )

    def to_element(self) -> Element:
        elem = etree.Element("memtune")
        for tag, attr in self._TAGS:
            value = getattr(self, attr)
            if value is not None:
                sub(elem, tag, {"unit": "KiB"}, value)
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> MemTune:
        values = {}
        for tag, attr in cls._TAGS:
            child = elem.find(tag)
            values[attr] = scaled_kib(child) if child is not None else None
        return cls(**values)


@dataclass(frozen=True)
class MemNode:
    cellid: int
    mode: str
    nodeset: CpuSet


@dataclass(frozen=True)
class NumaTune:
    memory_mode: str | None = None
    memory_nodeset: CpuSet | None = None
    memnodes: tuple[MemNode, ...] = ()

    def to_element(self) -> Element:
        elem = etree.Element("numatune")
        if self.memory_mode is not None or self.memory_nodeset is not None:
            nodeset = self.memory_nodeset.format() if self.memory_nodeset is not None else None
            sub(elem, "memory", {"mode": self.memory_mode, "nodeset": nodeset})
        for node in self.memnodes:
            sub(
                elem,
                "memnode",
                {"cellid": node.cellid, "mode": node.mode, "nodeset": node.nodeset.format()},
            )
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> NumaTune:
        memory = elem.find("memory")
        return cls(
            memory_mode=memory.get("mode", "strict") if memory is not None else None,
            memory_nodeset=attr_cpuset(memory, "nodeset") if memory is not None else None,
            memnodes=tuple(
                MemNode(req_int(e, "cellid"), e.get("mode", "strict"), req_cpuset(e, "nodeset"))
                for e in elem.findall("memnode")
            ),
        )


@dataclass(frozen=True)
class CpuFeature:
    name: str
    policy: str = "require"


@dataclass(frozen=True)
class CpuTopology:
    sockets: int
    cores: int
    threads: int
    dies: int = 1


@dataclass(frozen=True)
class NumaCell:
    id: int
    cpus: CpuSet
    memory_kib: int
    mem_access: str | None = None


def _cell_id(cell: Element, index: int) -> int:
    value = attr_int(cell, "id")
    return index if value is None else value


@dataclass(frozen=True)
class Cpu:
    """``<cpu>``: host-passthrough or a named model, features, topology, NUMA cells."""

    mode: str | None = "host-passthrough"
    match: str | None = None
    check: str | None = None
    migratable: bool | None = None
    model: str | None = None
    model_fallback: str | None = None
    topology: CpuTopology | None = None
    features: tuple[CpuFeature, ...] = ()
    cells: tuple[NumaCell, ...] = ()

    def to_element(self) -> Element:
        elem = etree.Element("cpu")
        for key, value in (("mode", self.mode), ("match", self.match), ("check", self.check)):
            if value is not None:
                elem.set(key, value)
        if self.migratable is not None:
            elem.set("migratable", "on" if self.migratable else "off")
        if self.model is not None:
            sub(elem, "model", {"fallback": self.model_fallback}, self.model)
        if self.topology is not None:
            t = self.topology
            sub(
                elem,
                "topology",
                {"sockets": t.sockets, "dies": t.dies, "cores": t.cores, "threads": t.threads},
            )
        for feature in self.features:
            sub(elem, "feature", {"policy": feature.policy, "name": feature.name})
        if self.cells:
            numa = sub(elem, "numa")
            for cell in self.cells:
                sub(
                    numa,
                    "cell",
                    {
                        "id": cell.id,
                        "cpus": cell.cpus.format(),
                        "memory": cell.memory_kib,
                        "unit": "KiB",
                        "memAccess": cell.mem_access,
                    },
                )
        return elem

    @classmethod
    def from_element(cls, elem: Element) -> Cpu:
        model, topo = elem.find("model"), elem.find("topology")
        migratable = elem.get("migratable")
        return cls(
            mode=elem.get("mode"),
            match=elem.get("match"),
            check=elem.get("check"),
            migratable=None if migratable is None else migratable == "on",
            model=(model.text or "").strip() if model is not None else None,
            model_fallback=model.get("fallback") if model is not None else None,
            topology=(
                CpuTopology(
                    req_int(topo, "sockets"),
                    req_int(topo, "cores"),
                    req_int(topo, "threads"),
                    attr_int(topo, "dies") or 1,
                )
                if topo is not None
                else None
            ),
            features=tuple(
                CpuFeature(req_attr(f, "name"), f.get("policy", "require"))
                for f in elem.findall("feature")
            ),
            cells=tuple(
                NumaCell(
                    _cell_id(c, i),
                    req_cpuset(c, "cpus"),
                    to_kib(req_int(c, "memory"), c.get("unit"), "<cell>"),
                    c.get("memAccess"),
                )
                for i, c in enumerate(elem.findall("numa/cell"))
            ),
        )


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
