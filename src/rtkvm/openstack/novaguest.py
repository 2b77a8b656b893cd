"""A Nova-built guest as libvirt holds it: who it is and which flavor it was built from.

Nova writes ``<nova:instance>`` into every domain's ``<metadata>`` (namespace
``http://openstack.org/xmlns/libvirt/nova/1.1``): the server's name, its
flavor with every extra spec, its owner. :func:`parse_nova_guest` reads that
from a domain's XML into a :class:`NovaGuest`, or None for a domain Nova did
not build. The domain's ``<uuid>`` is the server's id. This module is pure:
it must not talk to libvirt or to Nova.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

NOVA_NS_PREFIX = "http://openstack.org/xmlns/libvirt/nova/"


@dataclass(frozen=True)
class NovaGuest:
    domain: str
    server_id: str
    name: str
    flavor: str
    vcpus: int
    extra_specs: dict[str, str] = field(default_factory=dict)
    disks: tuple[str, ...] = ()
    """Source files and devices of the domain's disks (where its instance directory is)."""


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _nova(el: etree._Element) -> bool:
    return (
        isinstance(el.tag, str)
        and etree.QName(el.tag).namespace is not None
        and str(etree.QName(el.tag).namespace).startswith(NOVA_NS_PREFIX)
    )


def parse_nova_guest(xml: str) -> NovaGuest | None:
    root = etree.fromstring(xml.encode())
    instance = next(
        (el for el in root.iterfind("metadata/*") if _nova(el) and _local(el.tag) == "instance"),
        None,
    )
    if instance is None:
        return None
    nova = {_local(el.tag): el for el in instance if _nova(el)}
    flavor = nova.get("flavor")
    specs: dict[str, str] = {}
    vcpus = 0
    if flavor is not None:
        for el in flavor.iter():
            if _nova(el) and _local(el.tag) == "extraSpec":
                specs[el.get("name", "")] = el.text or ""
            elif _nova(el) and _local(el.tag) == "vcpus":
                vcpus = int(el.text or 0)
    disks = tuple(
        src
        for disk in root.iterfind("devices/disk/source")
        for src in (disk.get("file"), disk.get("dev"))
        if src
    )
    name_el = nova.get("name")
    return NovaGuest(
        domain=root.findtext("name") or "",
        server_id=root.findtext("uuid") or "",
        name=(name_el.text or "") if name_el is not None else "",
        flavor=flavor.get("name", "") if flavor is not None else "",
        vcpus=vcpus or int(root.findtext("vcpu") or 0),
        extra_specs=specs,
        disks=disks,
    )
