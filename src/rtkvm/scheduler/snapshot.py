"""Host snapshots and the scheduling request: the values filters and weighers see.

A :class:`HostSnapshot` is what the database says about one host at one
moment (liveness, doctor verdict, an admin's RT waiver, data plane, wired
physical networks, the GiB free for servers' disks, and per NUMA node the free
RT pCPUs, hugepages and RAM for 4k-page guests). A :class:`Request` is what
one guest needs, derived from its RT spec and networks. Both are frozen.

This module must not query anything; loading snapshots is ``loader.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtkvm.domain.spec import RtGuestSpec
from rtkvm.wire.node import RTKVM_ENGINE

READY = "ready"


@dataclass(frozen=True)
class NodeSnapshot:
    node: int
    rt_total: int
    rt_free: int
    hp_free: tuple[tuple[int, int], ...] = ()
    """(page size KiB, free pages) for the 2M and 1G pools."""
    mem_free: int = 0
    """MiB free for guests with 4k pages."""

    def pages_free(self, size_kib: int) -> int:
        return sum(n for size, n in self.hp_free if size == size_kib)


@dataclass(frozen=True)
class HostSnapshot:
    id: int
    name: str
    heartbeat_at: float | None
    doctor_verdict: str
    dataplane_state: str
    physnets: frozenset[str]
    nodes: tuple[NodeSnapshot, ...]
    rt_waiver: str | None = None
    """An admin's reason to admit this host although it is not RT-ready (a lab host)."""
    engine: str = RTKVM_ENGINE
    """Who builds its guests: only rtkvm's own hosts are scheduled to."""
    qualified_at: float | None = None
    """When its qualification that still holds passed; None: not qualified."""
    disk_free_gb: int | None = None
    """GiB for servers' disks not yet promised to one; None: its agent never reported it."""

    @property
    def waived(self) -> bool:
        """Admitted only by its waiver: not RT-ready, so its guests' latency is not assured."""
        return self.doctor_verdict != READY and self.rt_waiver is not None

    @property
    def rt_free(self) -> int:
        return sum(n.rt_free for n in self.nodes)

    @property
    def rt_total(self) -> int:
        return sum(n.rt_total for n in self.nodes)


def claimed_pcpus(spec: RtGuestSpec) -> int:
    """How many RT pCPUs one guest of this spec claims (what quotas count)."""
    isolate = 1 if spec.emulator_threads_policy == "isolate" else 0
    return len(spec.dedicated_vcpus) + isolate


def small_page_mib_per_cell(spec: RtGuestSpec) -> int:
    """RAM per guest cell (MiB, rounded up) a 4k-page guest takes from its host node's
    RAM; 0 for a hugepage guest, which takes pages from a pool instead."""
    if spec.page_size != "4k":
        return 0
    return -(-spec.cells()[0].memory_kib // 1024)


@dataclass(frozen=True)
class Request:
    """One guest's needs: per guest NUMA cell, pCPUs and memory (hugepages, or RAM for a
    guest with 4k pages) on one host node."""

    flavor: str
    cell_pcpus: tuple[int, ...]
    """Dedicated pCPUs per guest cell; cell 0 includes the isolated emulator CPU."""
    page_kib: int
    pages_per_cell: int
    """Hugepages per cell of ``page_kib``; 0 for 4k-page guests."""
    networks: tuple[tuple[str, str], ...] = ()
    """(network name, physical network label) in the guest's NIC order."""
    mib_per_cell: int = 0
    """RAM per cell in MiB for a 4k-page guest; 0 for hugepage guests (their pools)."""
    target_host: str | None = None
    """An admin's choice of host: that one or none."""
    qualified_since: float | None = None
    """An RT guest goes only to a host qualified at or after this time (the cloud requires
    qualified hosts); None: qualification is not required."""
    disk_gb: int = 0
    """GiB its disk may grow to (a server on an image); 0: no disk (a probe server)."""

    @classmethod
    def from_spec(cls, spec: RtGuestSpec, networks: tuple[tuple[str, str], ...] = ()) -> Request:
        isolate = 1 if spec.emulator_threads_policy == "isolate" else 0
        cells = spec.cells()
        own = spec.dedicated_vcpus
        pcpus = tuple(len(c.vcpus & own) + (isolate if c.id == 0 else 0) for c in cells)
        pages = 0 if spec.page_size == "4k" else cells[0].memory_kib // spec.page_size_kib
        return cls(
            spec.name, pcpus, spec.page_size_kib, pages, networks, small_page_mib_per_cell(spec)
        )

    @property
    def needs_qualified(self) -> bool:
        """Only a host with a qualification since ``qualified_since`` takes it."""
        return self.needs_rt and self.qualified_since is not None

    @property
    def pcpus(self) -> int:
        return sum(self.cell_pcpus)

    @property
    def needs_rt(self) -> bool:
        """It claims RT pCPUs, so only an RT-ready (or waived) host takes it; a shared
        (non-RT) guest takes any live host's shared CPUs and memory."""
        return self.pcpus > 0

    @property
    def physnets(self) -> frozenset[str]:
        return frozenset(p for _, p in self.networks)

    @property
    def page_label(self) -> str:
        return {2048: "2M", 1048576: "1G"}.get(self.page_kib, f"{self.page_kib}k")
