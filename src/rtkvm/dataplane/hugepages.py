"""Reserve hugepages per NUMA node for the switch, and give them back.

rtkvm adds the pages the switch needs on each node on top of what the node
already had, checks that the kernel really allocated them (memory can be too
fragmented), tops the pool up when another program took free pages before
DPDK could (PostgreSQL's huge_pages=try does), and afterwards takes back
exactly what it added, so that other users of the pool keep theirs. The
counts are returned as a value the caller persists, so a stop from another
process gives the pages back too. Reads and writes go through a writable
HostFS; this module must not mount filesystems or run commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rtkvm.errors import DataplaneError, HostReadError
from rtkvm.hostfs import HostFS, Unknown


def pool_path(node: int, size_kb: int) -> str:
    return f"/sys/devices/system/node/node{node}/hugepages/hugepages-{size_kb}kB"


@dataclass(frozen=True)
class Reservation:
    size_kb: int
    original: dict[int, int]
    """NUMA node -> nr_hugepages before rtkvm touched it."""
    added: dict[int, int]


@dataclass(frozen=True)
class Pool:
    persistent: int
    surplus: int
    """Pages beyond the persistent count, still mapped by some process."""
    free: int

    @property
    def raw(self) -> int:
        """What nr_hugepages of a node reads: persistent plus surplus."""
        return self.persistent + self.surplus


def read_pool(fs: HostFS, node: int, size_kb: int) -> Pool:
    """One node's pool of one page size.

    A node's nr_hugepages reads persistent + surplus pages, but writing it sets
    the persistent count (and turns surplus pages into persistent ones first),
    so the accounting here keeps the two apart.
    """
    base = pool_path(node, size_kb)
    try:
        raw = int(fs.read(f"{base}/nr_hugepages"))
        surplus_text = fs.read_maybe(f"{base}/surplus_hugepages")
        surplus = int(surplus_text) if isinstance(surplus_text, str) else 0
        return Pool(raw - surplus, surplus, int(fs.read(f"{base}/free_hugepages")))
    except HostReadError as exc:
        raise DataplaneError(
            f"cannot read the {size_kb} kB hugepage pool of NUMA node {node} ({exc}); "
            "the kernel needs CONFIG_HUGETLBFS and that page size"
        ) from None


def _grow(fs: HostFS, node: int, size_kb: int, pages: int) -> tuple[Pool, Pool]:
    """Ask for ``pages`` more free pages on a node; returns the pool before and after."""
    before = read_pool(fs, node, size_kb)
    fs.write(f"{pool_path(node, size_kb)}/nr_hugepages", str(before.raw + pages))
    return before, read_pool(fs, node, size_kb)


def reserve(fs: HostFS, wanted: Mapping[int, int], size_kb: int) -> Reservation:
    """Add ``wanted[node]`` free pages per node; rolls back and raises if the kernel falls short."""
    original: dict[int, int] = {}
    added: dict[int, int] = {}
    try:
        for node, pages in sorted(wanted.items()):
            before, after = _grow(fs, node, size_kb, pages)
            original[node] = before.persistent
            added[node] = after.persistent - before.persistent
            if after.free - before.free < pages:
                raise DataplaneError(
                    f"NUMA node {node}: asked the kernel for {pages} more {size_kb} kB hugepages, "
                    f"it has {after.free} free (was {before.free}); memory is too fragmented or "
                    "too small: free memory, or reserve hugepages at boot (hugepages= on the "
                    "kernel command line)"
                )
    except Exception:
        restore(fs, Reservation(size_kb, original, added))
        raise
    return Reservation(size_kb, original, added)


def reserved_elsewhere(fs: HostFS, size_kb: int) -> int:
    """Free pages already promised to mappings (HugePages_Rsvd, default page size only).

    They count as free but are not available: a program that mapped hugepages
    without touching them yet (PostgreSQL's shared memory) holds them.
    """
    meminfo = fs.read_maybe("/proc/meminfo")
    if isinstance(meminfo, Unknown):
        return 0
    fields = dict(
        (line.split(":", 1)[0], line.split(":", 1)[1].split()[0])
        for line in meminfo.splitlines()
        if ":" in line and line.split(":", 1)[1].split()
    )
    if fields.get("Hugepagesize") != str(size_kb):
        return 0
    return int(fields.get("HugePages_Rsvd", "0"))


def top_up(fs: HostFS, reservation: Reservation, wanted: Mapping[int, int]) -> Reservation:
    """Add pages until each node has ``wanted[node]`` available again; returns the new totals."""
    added = dict(reservation.added)
    for node, pages in sorted(wanted.items()):
        rsvd = reserved_elsewhere(fs, reservation.size_kb)
        available = read_pool(fs, node, reservation.size_kb).free - rsvd
        if available >= pages:
            continue
        before, after = _grow(fs, node, reservation.size_kb, pages - available)
        added[node] = added.get(node, 0) + after.persistent - before.persistent
        if after.free - rsvd < pages:
            raise DataplaneError(
                f"NUMA node {node}: {pages} free {reservation.size_kb} kB hugepages needed, "
                f"{after.free} free ({rsvd} of them reserved by other programs) after topping "
                "up: memory is too small or too fragmented"
            )
    return Reservation(reservation.size_kb, reservation.original, added)


def restore(fs: HostFS, reservation: Reservation) -> None:
    """Give back exactly the pages rtkvm added; others' pages (and surplus) stay theirs."""
    for node, count in sorted(reservation.added.items()):
        pool = read_pool(fs, node, reservation.size_kb)
        path = f"{pool_path(node, reservation.size_kb)}/nr_hugepages"
        fs.write(path, str(max(pool.persistent - count, 0)))


def users(fs: HostFS) -> list[str]:
    """'comm (N processes)' for every program with hugetlb mappings (/proc/PID/numa_maps)."""
    counts: dict[str, int] = {}
    for name in fs.listdir("/proc"):
        if not name.isdigit():
            continue
        maps = fs.read_maybe(f"/proc/{name}/numa_maps")
        if isinstance(maps, str) and " huge " in maps:
            comm = fs.read_line(f"/proc/{name}/comm")
            key = comm if isinstance(comm, str) else "?"
            counts[key] = counts.get(key, 0) + 1
    return [f"{comm} ({n} process{'es' if n > 1 else ''})" for comm, n in sorted(counts.items())]
