"""Reserve hugepages per NUMA node for the switch, and give them back.

rtkvm adds exactly the pages the switch needs on each node on top of what
the node already had, checks that the kernel really allocated them (memory
can be too fragmented), and restores the original counts afterwards. The
original counts are returned as a value that the caller persists, so a stop
from another process restores them too. Reads and writes go through a
writable HostFS; this module must not mount filesystems or run commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rtkvm.errors import DataplaneError, HostReadError
from rtkvm.hostfs import HostFS


def pool_path(node: int, size_kb: int) -> str:
    return f"/sys/devices/system/node/node{node}/hugepages/hugepages-{size_kb}kB"


@dataclass(frozen=True)
class Reservation:
    size_kb: int
    original: dict[int, int]
    """NUMA node -> nr_hugepages before rtkvm touched it."""
    added: dict[int, int]


def read_pool(fs: HostFS, node: int, size_kb: int) -> tuple[int, int]:
    """(total, free) pages of one size on one node."""
    base = pool_path(node, size_kb)
    try:
        return int(fs.read(f"{base}/nr_hugepages")), int(fs.read(f"{base}/free_hugepages"))
    except HostReadError as exc:
        raise DataplaneError(
            f"cannot read the {size_kb} kB hugepage pool of NUMA node {node} ({exc}); "
            "the kernel needs CONFIG_HUGETLBFS and that page size"
        ) from None


def reserve(fs: HostFS, wanted: Mapping[int, int], size_kb: int) -> Reservation:
    """Add ``wanted[node]`` pages on each node; rolls back and raises if the kernel falls short."""
    original: dict[int, int] = {}
    added: dict[int, int] = {}
    try:
        for node, pages in sorted(wanted.items()):
            total, free = read_pool(fs, node, size_kb)
            original[node] = total
            fs.write(f"{pool_path(node, size_kb)}/nr_hugepages", str(total + pages))
            got, now_free = read_pool(fs, node, size_kb)
            added[node] = got - total
            if now_free - free < pages:
                raise DataplaneError(
                    f"NUMA node {node}: asked the kernel for {pages} more {size_kb} kB hugepages, "
                    f"it allocated {got - total} (free {now_free}); memory is too fragmented or "
                    "too small: free memory, or reserve hugepages at boot (hugepages= on the "
                    "kernel command line)"
                )
    except Exception:
        restore(fs, Reservation(size_kb, original, added))
        raise
    return Reservation(size_kb, original, added)


def restore(fs: HostFS, reservation: Reservation) -> None:
    """Give the pages back: write each node's original count."""
    for node, total in sorted(reservation.original.items()):
        fs.write(f"{pool_path(node, reservation.size_kb)}/nr_hugepages", str(total))
