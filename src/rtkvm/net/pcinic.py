"""NICs a DPDK driver owns: uplinks the wiring names by PCI address, as sysfs shows them.

A wiring entry whose interface is a PCI address (``0000:3b:00.0``) names a
NIC bound to a driver DPDK drives it through (vfio-pci): it has no kernel
interface, so its presence, driver and NUMA node come from
/sys/bus/pci/devices/ADDR, and its link from the switch that polls it. This
module reads sysfs through HostFS. It must not bind or unbind drivers (the
operator does, with ``dpdk-devbind.py``: rtkvm never takes a NIC away from
the kernel) nor talk to the switch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rtkvm.hostfs import HostFS, Unknown

PCI_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
"""A PCI address in sysfs form: domain:bus:device.function, lower-case hex."""
DPDK_DRIVERS = ("vfio-pci",)
"""Kernel drivers through which DPDK drives a NIC itself (the IOMMU-safe one)."""
BIND_FIX = "bind it for DPDK: dpdk-devbind.py --bind=vfio-pci {address}"


def is_pci_address(text: str) -> bool:
    return PCI_ADDRESS.match(text) is not None


@dataclass(frozen=True)
class PciNic:
    address: str
    driver: str | None
    """The driver bound to it now; None: none."""
    numa_node: int | None
    """Its NUMA node; None: the platform does not say (-1 in sysfs)."""

    @property
    def dpdk_ready(self) -> bool:
        return self.driver in DPDK_DRIVERS

    def binding(self) -> str:
        """What the binding means for DPDK, in words."""
        if self.dpdk_ready:
            return f"NIC {self.address} is bound to {self.driver}: DPDK drives it"
        bound = f"bound to {self.driver}" if self.driver else "bound to no driver"
        return f"NIC {self.address} is {bound}, not to {' or '.join(DPDK_DRIVERS)}"


def read_pci_nic(fs: HostFS, address: str) -> PciNic | None:
    """The NIC at ``address``; None when the host has no such PCI device."""
    base = f"/sys/bus/pci/devices/{address}"
    if not fs.exists(base):
        return None
    node = fs.read_line(f"{base}/numa_node")
    numa = None if isinstance(node, Unknown) or not node.lstrip("-").isdigit() else int(node)
    return PciNic(
        address, fs.link_name(f"{base}/driver"), numa if numa is None or numa >= 0 else None
    )


def dpdk_nics(fs: HostFS, addresses: Iterable[str]) -> list[str]:
    """Of the PCI ``addresses`` (other names are skipped), those present and bound to a
    DPDK driver: the uplinks a switch can poll."""
    ready = []
    for address in addresses:
        if not is_pci_address(address):
            continue
        nic = read_pci_nic(fs, address)
        if nic is not None and nic.dpdk_ready:
            ready.append(address)
    return ready
