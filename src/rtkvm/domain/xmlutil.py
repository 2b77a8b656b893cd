"""Small helpers shared by the typed libvirt domain elements.

Building children with optional attributes, reading typed attributes with
errors that name the element, keeping unmodelled elements verbatim, and
canonicalising XML for comparisons. This module must not know any libvirt
element by name: the element classes do.
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from rtkvm.cpuset import CpuSet
from rtkvm.errors import DomainXMLError, InputError

Element = etree._Element

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
"""libvirt's QEMU namespace (``<qemu:override>``, ``<qemu:commandline>``)."""


def sub(
    parent: Element,
    tag: str,
    attrs: Mapping[str, str | int | None] | None = None,
    text: str | int | None = None,
) -> Element:
    """Append ``<tag>`` to parent with the attributes that are not None."""
    child = etree.SubElement(parent, tag)
    for key, value in (attrs or {}).items():
        if value is not None:
            child.set(key, str(value))
    if text is not None:
        child.text = str(text)
    return child


def yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def on_off(value: bool | None) -> str | None:
    return None if value is None else ("on" if value else "off")


def attr_bool(elem: Element, name: str) -> bool | None:
    """Read a yes/no or on/off attribute; None when absent."""
    raw = elem.get(name)
    if raw is None:
        return None
    if raw in ("yes", "on"):
        return True
    if raw in ("no", "off"):
        return False
    raise DomainXMLError(f"<{elem.tag} {name}={raw!r}>: expected yes/no or on/off")


def attr_int(elem: Element, name: str) -> int | None:
    raw = elem.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise DomainXMLError(f"<{elem.tag} {name}={raw!r}>: expected an integer") from None


def req_int(elem: Element, name: str) -> int:
    value = attr_int(elem, name)
    if value is None:
        raise DomainXMLError(f"<{elem.tag}> needs the attribute {name!r}")
    return value


def req_attr(elem: Element, name: str) -> str:
    value = elem.get(name)
    if value is None:
        raise DomainXMLError(f"<{elem.tag}> needs the attribute {name!r}")
    return value


def attr_cpuset(elem: Element, name: str) -> CpuSet | None:
    raw = elem.get(name)
    if raw is None:
        return None
    try:
        return CpuSet.parse(raw)
    except InputError as exc:
        raise DomainXMLError(f"<{elem.tag} {name}={raw!r}>: {exc}") from None


def req_cpuset(elem: Element, name: str) -> CpuSet:
    value = attr_cpuset(elem, name)
    if value is None:
        raise DomainXMLError(f"<{elem.tag}> needs the attribute {name!r}")
    return value


def text_int(elem: Element) -> int:
    raw = (elem.text or "").strip()
    try:
        return int(raw)
    except ValueError:
        raise DomainXMLError(f"<{elem.tag}>{raw}</{elem.tag}>: expected an integer") from None


_UNIT_KIB = {
    "b": 1 / 1024,
    "bytes": 1 / 1024,
    "k": 1,
    "kib": 1,
    "kb": 1000 / 1024,
    "m": 1024,
    "mib": 1024,
    "mb": 1000**2 / 1024,
    "g": 1024**2,
    "gib": 1024**2,
    "gb": 1000**3 / 1024,
    "t": 1024**3,
    "tib": 1024**3,
}


def to_kib(value: int, unit: str | None, where: str) -> int:
    """Convert a libvirt scaled integer to KiB (libvirt's default unit)."""
    factor = _UNIT_KIB.get((unit or "KiB").lower())
    if factor is None:
        raise DomainXMLError(f"{where}: unknown unit {unit!r}")
    return int(value * factor)


def scaled_kib(elem: Element) -> int:
    """A text element with an optional ``unit`` attribute, in KiB."""
    return to_kib(text_int(elem), elem.get("unit"), f"<{elem.tag}>")


def raw(elem: Element) -> str:
    """An unmodelled element, kept verbatim (tail text dropped)."""
    copy = etree.fromstring(etree.tostring(elem))
    return etree.tostring(copy, encoding="unicode")


def append_raw(parent: Element, text: str) -> None:
    parent.append(etree.fromstring(text))


def others(elem: Element, known: set[str]) -> tuple[str, ...]:
    """Child elements whose tag is not in ``known``, kept verbatim."""
    return tuple(raw(c) for c in elem if is_element(c) and c.tag not in known)


def other_attrs(elem: Element | None, known: set[str]) -> tuple[tuple[str, str], ...]:
    """Attributes not in ``known``, kept as (name, value) pairs in document order."""
    if elem is None:
        return ()
    return tuple((str(k), str(v)) for k, v in elem.attrib.items() if k not in known)


def is_element(node: object) -> bool:
    """True for elements, False for comments and processing instructions."""
    return isinstance(node, etree._Element) and isinstance(node.tag, str)


def canonical(xml: str | bytes) -> str:
    """Canonical form (C14N 2.0, whitespace stripped) for comparing XML documents."""
    parser = etree.XMLParser(remove_blank_text=True, remove_comments=True)
    data = xml.encode() if isinstance(xml, str) else xml
    root = etree.fromstring(data, parser)
    return str(etree.canonicalize(etree.tostring(root, encoding="unicode"), strip_text=True))
