"""Guest lifecycle on libvirt: define, start, stop, delete, list (libvirt-python).

Works on any libvirt URI (qemu:///system for real guests, test:///default in
tests). rtkvm's guests carry a metadata element so that ``list`` shows only
them and ``delete`` refuses a domain rtkvm did not create. Deleting a guest
also removes its serial log file. The XML comes from the caller (the design
layer renders it): this module must not design domains, read /proc or parse
cyclictest.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
from lxml import etree

from rtkvm.errors import GuestError
from rtkvm.footprint import GUEST_DIR, Footprint

DEFAULT_URI = "qemu:///system"
META_NS = "https://rtkvm.dev/xmlns/guest/1"
META_KEY = "rtkvm"

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "no state",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutting down",
    libvirt.VIR_DOMAIN_SHUTOFF: "shut off",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended",
}


@dataclass(frozen=True)
class GuestInfo:
    name: str
    state: str
    vcpus: int
    memory_mib: int
    accel: str
    serial_log: str | None


@contextmanager
def connect(uri: str = DEFAULT_URI) -> Iterator[Any]:
    """An open libvirt connection, closed on exit; GuestError if libvirtd is unreachable."""
    libvirt.registerErrorHandler(_quiet, None)  # errors become GuestError, not stderr noise
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise GuestError(
            f"cannot connect to {uri}: {exc}; is libvirtd up? run 'rtkvm runtime up'"
        ) from None
    try:
        yield conn
    finally:
        conn.close()


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt's default handler prints every error to stderr; ours are raised instead."""


def _lookup(conn: Any, name: str) -> Any:
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError:
        raise GuestError(f"no guest named {name!r} on {conn.getURI()}") from None


def is_rtkvm(dom: Any) -> bool:
    try:
        dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, META_NS, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    except libvirt.libvirtError:
        return False
    return True


def exists(conn: Any, name: str) -> bool:
    """Whether a domain of that name is defined (rtkvm's or not)."""
    try:
        conn.lookupByName(name)
    except libvirt.libvirtError:
        return False
    return True


def define(conn: Any, xml: str) -> str:
    """Define a persistent domain from XML and tag it as rtkvm's; returns its name."""
    name = etree.fromstring(xml.encode()).findtext("name") or ""
    try:
        conn.lookupByName(name)
    except libvirt.libvirtError:
        pass
    else:
        raise GuestError(f"a domain named {name!r} already exists: delete it or pick another name")
    try:
        dom = conn.defineXML(xml)
        dom.setMetadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT,
            "<guest managed='yes'/>",
            META_KEY,
            META_NS,
            libvirt.VIR_DOMAIN_AFFECT_CONFIG,
        )
    except libvirt.libvirtError as exc:
        raise GuestError(f"libvirt refused guest {name!r}: {exc}") from None
    return str(dom.name())


def start(conn: Any, name: str) -> None:
    dom = _lookup(conn, name)
    if dom.isActive():
        return
    prepare_files(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    try:
        dom.create()
    except libvirt.libvirtError as exc:
        raise GuestError(f"guest {name!r} did not start: {exc}") from None


def shutdown(conn: Any, name: str) -> None:
    """Press the guest's ACPI power button; returns at once (the guest decides)."""
    dom = _lookup(conn, name)
    if not dom.isActive():
        return
    try:
        dom.shutdown()
    except libvirt.libvirtError as exc:
        if dom.isActive():
            raise GuestError(f"guest {name!r} refused the shutdown request: {exc}") from None


def stop(conn: Any, name: str, *, graceful_timeout: float = 0.0) -> None:
    """Stop a guest: ACPI shutdown for up to ``graceful_timeout`` s, then power off."""
    dom = _lookup(conn, name)
    if not dom.isActive():
        return
    if graceful_timeout > 0:
        with contextlib.suppress(libvirt.libvirtError):  # no ACPI: destroy below
            dom.shutdown()
        deadline = time.monotonic() + graceful_timeout
        while dom.isActive() and time.monotonic() < deadline:
            time.sleep(0.2)
    if dom.isActive():
        try:
            dom.destroy()
        except libvirt.libvirtError as exc:
            if dom.isActive():
                raise GuestError(f"guest {name!r} could not be stopped: {exc}") from None


def delete(conn: Any, name: str, *, force: bool = False) -> list[str]:
    """Stop, undefine and remove the serial log; returns what was removed."""
    dom = _lookup(conn, name)
    if not force and not is_rtkvm(dom):
        raise GuestError(f"domain {name!r} was not created by rtkvm: use --force to delete it")
    log = serial_log(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    stop(conn, name)
    try:
        dom.undefine()
    except libvirt.libvirtError as exc:
        raise GuestError(f"guest {name!r} could not be undefined: {exc}") from None
    removed = [f"domain {name}"]
    if log is not None and Path(log).exists():
        Path(log).unlink()
        removed.append(log)
    return removed


def prepare_files(xml: str) -> None:
    """Create the directory of the guest's serial log before a start.

    libvirt opens the log file itself but never creates its directory; the
    default one is rtkvm's footprint (:data:`rtkvm.footprint.GUEST_DIR`).
    """
    log = serial_log(xml)
    if log is None:
        return
    parent = Path(log).parent
    if str(parent) == GUEST_DIR.path:
        Footprint().ensure_dir(GUEST_DIR)
        return
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GuestError(f"cannot create {parent} for the serial log {log}: {exc}") from None


def serial_log(xml: str) -> str | None:
    """The file the first serial port writes to (its file, or the log of its socket), or
    None (a pty)."""
    root = etree.fromstring(xml.encode())
    source = root.find("./devices/serial[@type='file']/source")
    if source is not None:
        return source.get("path")
    log = root.find("./devices/serial[@type='unix']/log")
    return log.get("file") if log is not None else None


def info(dom: Any) -> GuestInfo:
    state = dom.info()[0]
    xml = dom.XMLDesc(0)
    root = etree.fromstring(xml.encode())
    dtype = root.get("type", "")
    mem_kib = int(root.findtext("memory") or "0")  # libvirt writes KiB
    return GuestInfo(
        name=str(dom.name()),
        state=_STATES.get(state, f"state {state}"),
        vcpus=int(root.findtext("vcpu") or "0"),
        memory_mib=int(mem_kib) // 1024,
        accel="kvm" if dtype == "kvm" else "tcg" if dtype == "qemu" else dtype,
        serial_log=serial_log(xml),
    )


def list_guests(conn: Any, *, everything: bool = False) -> list[GuestInfo]:
    """rtkvm's guests (or every domain with ``everything``), sorted by name."""
    doms = conn.listAllDomains(0)
    return sorted((info(d) for d in doms if everything or is_rtkvm(d)), key=lambda g: g.name)


def domain(conn: Any, name: str) -> Any:
    """The libvirt domain object of a guest (GuestError if absent)."""
    return _lookup(conn, name)


def with_cmdline(xml: str, cmdline: str) -> str:
    """The domain XML with its kernel command line replaced."""
    root = etree.fromstring(xml.encode())
    os_elem = root.find("os")
    if os_elem is None or os_elem.find("kernel") is None:
        raise GuestError("the guest does not boot a kernel directly: no command line to set")
    elem = os_elem.find("cmdline")
    if elem is None:
        elem = etree.SubElement(os_elem, "cmdline")
    elem.text = cmdline
    return etree.tostring(root, encoding="unicode")


def cmdline_of(xml: str) -> str:
    root = etree.fromstring(xml.encode())
    return root.findtext("./os/cmdline") or ""


def redefine(conn: Any, xml: str) -> None:
    """Replace a shut-off guest's persistent definition (keeps rtkvm's metadata)."""
    try:
        conn.defineXML(xml)
    except libvirt.libvirtError as exc:
        raise GuestError(f"libvirt refused the new definition: {exc}") from None
