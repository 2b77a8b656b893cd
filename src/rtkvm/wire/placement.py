"""The placement on the wire and in the database: where a guest's vCPUs, emulator and memory go.

:class:`PlacementDoc` is the one serialised form of
:class:`rtkvm.domain.placement.Placement` plus the memory it holds per host
node (hugepages, or RAM for a guest with 4k pages). The scheduler writes it
when it claims (``PlacementDoc.of``), the database keeps it as JSON, the API
hands it to the node's agent, and the agent turns it back into the domain
value (:meth:`PlacementDoc.to_placement`) without recomputing anything: the
floating CPUs of a mixed guest travel with it. This module must not choose
pCPUs (``domain.placement`` does) nor touch the database.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rtkvm.cpuset import CpuSet
from rtkvm.domain.placement import Placement
from rtkvm.errors import InputError


class PlacementDoc(BaseModel):
    """A guest's placement on one host: pins, emulator CPUs, nodes, floating CPUs, pages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vcpu_pins: list[tuple[int, int]] = []
    """(vCPU, pCPU) of each dedicated vCPU, ascending by vCPU."""
    emulator_cpus: str = ""
    cell_nodes: list[int] = []
    """Host NUMA node of guest cell 0, 1, ...; empty: not placed."""
    isolated_emulator_cpu: int | None = None
    floating_vcpus: str | None = None
    """vCPUs of a mixed guest that float (kernel list); None: written before they were kept."""
    floating_cpus: str | None = None
    """Housekeeping CPUs the floating vCPUs run on."""
    hugepages: dict[int, int] = {}
    """Pages held per host node."""
    page_kib: int = Field(default=4, gt=0)
    memory_mib: dict[int, int] = {}
    """RAM (MiB) held per host node by a guest with 4k pages; empty for hugepage guests
    (and for 4k-page guests placed before RAM was accounted)."""

    @classmethod
    def of(
        cls,
        placement: Placement,
        pages: dict[int, int],
        page_kib: int,
        memory_mib: dict[int, int] | None = None,
    ) -> PlacementDoc:
        return cls(
            vcpu_pins=[(v, p) for v, p in placement.vcpu_pins],
            emulator_cpus=str(placement.emulator_cpus),
            cell_nodes=list(placement.cell_nodes),
            isolated_emulator_cpu=placement.isolated_emulator_cpu,
            floating_vcpus=str(placement.floating_vcpus),
            floating_cpus=str(placement.floating_cpus),
            hugepages=dict(pages),
            page_kib=page_kib,
            memory_mib=dict(memory_mib or {}),
        )

    @classmethod
    def parse(cls, text: str | None) -> PlacementDoc:
        """The stored JSON (``{}`` or None: not placed); InputError when it is not one."""
        try:
            return cls.model_validate_json(text or "{}")
        except ValidationError as exc:
            raise InputError(f"a stored placement does not parse: {exc}") from None

    @property
    def placed(self) -> bool:
        return bool(self.cell_nodes)

    def to_placement(self) -> Placement:
        """The domain value; InputError when not placed or written without floating CPUs."""
        if not self.placed:
            raise InputError("the instance has no placement: it was never scheduled")
        if self.floating_vcpus is None or self.floating_cpus is None:
            raise InputError("the placement was stored without its floating CPUs")
        return Placement(
            vcpu_pins=tuple(sorted((int(v), int(p)) for v, p in self.vcpu_pins)),
            emulator_cpus=CpuSet.parse(self.emulator_cpus),
            cell_nodes=tuple(self.cell_nodes),
            isolated_emulator_cpu=self.isolated_emulator_cpu,
            floating_vcpus=CpuSet.parse(self.floating_vcpus),
            floating_cpus=CpuSet.parse(self.floating_cpus),
        )
