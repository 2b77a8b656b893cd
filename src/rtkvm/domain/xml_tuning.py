"""Typed libvirt elements for CPU and memory tuning: cputune, memoryBacking, memtune,
numatune and cpu (model, features, topology, NUMA cells).

Each class converts between itself and XML (``to_element`` / ``from_element``)
and nothing else. Memory sizes are held in KiB, libvirt's default unit. This
module must not contain policy: nothing here decides what a real-time guest
needs (that is :mod:`rtkvm.domain.design`) or judges a domain (that is
:mod:`rtkvm.domain.audit`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from rtkvm.cpuset import CpuSet
from rtkvm.domain.xmlutil import (
    Element,
    append_raw,
    attr_cpuset,
    attr_int,
    others,
    req_attr,
    req_cpuset,
    req_int,
    scaled_kib,
    sub,
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
    other: tuple[str, ...] = ()
    """Unmodelled children (shares, period, quota, cachetune, ...), kept verbatim."""

    def to_element(self) -> Element:
        elem = etree.Element("cputune")
        for text in self.other:
            append_raw(elem, text)
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
            other=others(elem, _CPUTUNE_KNOWN),
        )


_CPUTUNE_KNOWN = {"vcpupin", "emulatorpin", "iothreadpin", "vcpusched", "emulatorsched"}


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
    other: tuple[str, ...] = ()
    """Unmodelled children (discard, ...), kept verbatim."""

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
        for text in self.other:
            append_raw(elem, text)
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
            other=others(
                elem, {"hugepages", "nosharepages", "locked", "source", "access", "allocation"}
            ),
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
    other: tuple[str, ...] = ()
    """Unmodelled children (vendor, cache, maxphysaddr, ...), kept verbatim."""

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
        for text in self.other:
            append_raw(elem, text)
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
            other=others(elem, {"model", "topology", "feature", "numa"}),
        )
