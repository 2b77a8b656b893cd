"""The real-time guest spec: the fields of an RT flavor, validated.

:class:`RtGuestSpec` is a frozen pydantic model (vCPUs, which of them are
real-time, scheduler and priority, emulator-thread policy, memory and page
size, locking, NUMA cells, PMU). It can be built from rtkvm's own JSON or from
OpenStack Nova flavor extra specs (``hw:cpu_policy``, ``hw:cpu_realtime``,
``hw:cpu_realtime_mask``, ``hw:emulator_threads_policy``, ``hw:mem_page_size``,
``hw:pmu``, ``hw:locked_memory``, ``hw:numa_nodes``) plus ``rtkvm:*`` keys for
what Nova lacks (per-flavor policy and priority, I/O threads). A bad spec
raises :class:`SpecError` saying what to change.

This module must not know about hosts, pCPUs or XML: placement and design do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from rtkvm import priorities
from rtkvm.cpuset import CpuSet
from rtkvm.errors import CpuListError, SpecError

VCPU_PRIORITY_DEFAULT = priorities.VCPU_DEFAULT
"""Default SCHED_FIFO priority of RT vCPU threads on the host (40).

Not Nova's and KubeVirt's 1: at 1 a vCPU ties with every other FIFO-1 thread,
and round-robin ties are exactly the latency we are removing. The whole scale
(per-CPU kernel threads at 2-4 below the vCPUs, threaded IRQ handlers at 50
above them) and its trade-offs are in :mod:`rtkvm.priorities`.
"""

VCPU_PRIORITY_MIN = priorities.FIFO_MIN
VCPU_PRIORITY_MAX = priorities.FIFO_MAX
"""A flavor may ask for any FIFO/RR priority; outside the RT band the design warns."""

PAGE_SIZES_KIB: dict[str, int] = {"4k": 4, "2M": 2048, "1G": 1048576}


def _key(field: str, nova: str | None = None) -> str:
    """How a field is named in messages: the Nova or rtkvm key and the JSON field."""
    name = nova or f"rtkvm:{field}"
    return f"{name} ({field!r} in a flavor file)"


class RtGuestSpec(BaseModel):
    """The fields of a real-time flavor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "rt"
    vcpus: int
    memory_mib: int
    cpu_policy: Literal["dedicated", "shared", "mixed"] = "dedicated"
    realtime: bool = True
    realtime_mask: str | None = None
    """Nova syntax: ``^0-1`` = every vCPU but 0-1; ``2-3`` = only 2-3; None = all."""
    sched_policy: Literal["fifo", "rr"] = "fifo"
    priority: int = VCPU_PRIORITY_DEFAULT
    emulator_threads_policy: Literal["share", "isolate"] | None = None
    iothreads: int = 0
    page_size: Literal["4k", "2M", "1G"] = "2M"
    locked_memory: bool = True
    nosharepages: bool = True
    numa_nodes: int = 1
    pmu: bool = False
    shared_memory: bool | None = None
    """Guest memory shared with the host's switch; None: only when the guest has vhost-user NICs."""

    @model_validator(mode="after")
    def _check(self) -> RtGuestSpec:
        _check_sizes(self)
        if self.cpu_policy == "shared" and self.emulator_threads_policy == "isolate":
            raise SpecError(
                f"{_key('emulator_threads_policy', 'hw:emulator_threads_policy')} is 'isolate' "
                "but the flavor's vCPUs are shared (hw:cpu_policy=shared): its emulator "
                "threads run with them on the host's shared CPUs; drop the key"
            )
        if not self.realtime:
            if self.realtime_mask is not None:
                raise SpecError(
                    f"{_key('realtime_mask', 'hw:cpu_realtime_mask')} is set but the flavor "
                    "is not real-time: set hw:cpu_realtime=yes or drop the mask"
                )
            return self
        if self.cpu_policy == "shared":
            raise SpecError(
                "Cannot set realtime policy in a non dedicated cpu pinning policy: "
                f"{_key('cpu_policy', 'hw:cpu_policy')} is 'shared'; set "
                "hw:cpu_policy=dedicated (every vCPU on its own pCPU) or mixed (the RT vCPUs "
                "on their own pCPUs, the others on the host's shared CPUs)"
            )
        if not VCPU_PRIORITY_MIN <= self.priority <= VCPU_PRIORITY_MAX:
            raise SpecError(
                f"{_key('priority', 'rtkvm:cpu_realtime_priority')} is {self.priority}, out of "
                f"range {VCPU_PRIORITY_MIN}..{VCPU_PRIORITY_MAX} (the kernel's SCHED_FIFO and "
                f"SCHED_RR range); use e.g. the default {VCPU_PRIORITY_DEFAULT}"
            )
        rt = self.rt_vcpus  # validates the mask
        if rt == self.all_vcpus and self.emulator_threads_policy is None:
            raise SpecError(
                "Use of realtime CPUs requires either one or more non-realtime CPU(s) or "
                f"offloaded emulator threads: all {self.vcpus} vCPUs are real-time and "
                f"{_key('emulator_threads_policy', 'hw:emulator_threads_policy')} is not set. "
                "Set hw:cpu_realtime_mask=^0 (vCPU 0 runs the guest's housekeeping), or "
                "hw:emulator_threads_policy=isolate (one extra dedicated pCPU) or "
                "share (the host's housekeeping CPUs)"
            )
        return self

    @property
    def all_vcpus(self) -> CpuSet:
        return CpuSet(range(self.vcpus))

    @property
    def rt_vcpus(self) -> CpuSet:
        """The real-time vCPUs (empty when the flavor is not real-time)."""
        if not self.realtime:
            return CpuSet()
        return resolve_mask(self.realtime_mask, self.vcpus)

    @property
    def dedicated_vcpus(self) -> CpuSet:
        """vCPUs that get a pCPU of their own: all of a dedicated guest, the RT ones of a
        mixed guest, none of a shared guest."""
        if self.cpu_policy == "shared":
            return CpuSet()
        return self.rt_vcpus if self.cpu_policy == "mixed" else self.all_vcpus

    @property
    def floating_vcpus(self) -> CpuSet:
        """vCPUs that float over the host's shared (housekeeping) CPUs: the others."""
        return self.all_vcpus - self.dedicated_vcpus

    @property
    def housekeeping_vcpus(self) -> CpuSet:
        """vCPUs that run the guest's own housekeeping (not real-time)."""
        return self.all_vcpus - self.rt_vcpus

    @property
    def page_size_kib(self) -> int:
        return PAGE_SIZES_KIB[self.page_size]

    @property
    def memory_kib(self) -> int:
        return self.memory_mib * 1024

    def cells(self) -> list[GuestCell]:
        """Guest NUMA cells: vCPUs and memory split evenly, in order."""
        per_cpu = self.vcpus // self.numa_nodes
        per_mem = self.memory_kib // self.numa_nodes
        return [
            GuestCell(i, CpuSet(range(i * per_cpu, (i + 1) * per_cpu)), per_mem)
            for i in range(self.numa_nodes)
        ]


@dataclass(frozen=True)
class GuestCell:
    id: int
    vcpus: CpuSet
    memory_kib: int


MAX_VCPUS = 4096
"""QEMU's most vCPUs per guest (KVM's KVM_MAX_VCPUS on x86 is 4096)."""
MAX_MEMORY_MIB = 16 * 1024 * 1024
"""16 TiB: more than any host rtkvm schedules on; a larger flavor is a typo."""
MAX_NUMA_NODES = 64
MAX_IOTHREADS = 64
"""Each I/O thread is a housekeeping thread: more than a host has CPUs is a typo."""


def _check_sizes(spec: RtGuestSpec) -> None:
    if not 1 <= spec.vcpus <= MAX_VCPUS:
        raise SpecError(f"the flavor has {spec.vcpus} vCPUs: give 1 to {MAX_VCPUS}")
    if spec.memory_mib < 64:
        raise SpecError(f"memory {spec.memory_mib} MiB is too small: give at least 64 MiB")
    if spec.memory_mib > MAX_MEMORY_MIB:
        raise SpecError(
            f"memory {spec.memory_mib} MiB is more than {MAX_MEMORY_MIB} MiB (16 TiB): "
            "give the guest's size in MiB"
        )
    if spec.numa_nodes > MAX_NUMA_NODES:
        raise SpecError(
            f"{_key('numa_nodes', 'hw:numa_nodes')} {spec.numa_nodes} is over {MAX_NUMA_NODES}"
        )
    if spec.numa_nodes < 1 or spec.vcpus % spec.numa_nodes:
        raise SpecError(
            f"{_key('numa_nodes', 'hw:numa_nodes')} is {spec.numa_nodes}: it must be at least "
            f"1 and divide the {spec.vcpus} vCPUs evenly"
        )
    page_mib = max(1, spec.page_size_kib // 1024)
    if spec.memory_mib % (page_mib * spec.numa_nodes):
        raise SpecError(
            f"memory {spec.memory_mib} MiB cannot be split into {spec.numa_nodes} NUMA cell(s) "
            f"of whole {spec.page_size} pages: use a multiple of {page_mib * spec.numa_nodes} MiB"
        )
    if not 0 <= spec.iothreads <= MAX_IOTHREADS:
        raise SpecError(f"{_key('iothreads')} is {spec.iothreads}: give 0 to {MAX_IOTHREADS}")


def resolve_mask(mask: str | None, vcpus: int) -> CpuSet:
    """The RT vCPUs named by a Nova-style mask; raises SpecError on a bad mask.

    ``None`` means every vCPU. A mask made only of exclusions (``^0-1``) means
    every vCPU but those; otherwise it is an include list (``2-3``, ``0-3,^1``).
    """
    every = CpuSet(range(vcpus))
    if mask is None:
        return every
    where = _key("realtime_mask", "hw:cpu_realtime_mask")
    tokens = [t.strip() for t in mask.split(",") if t.strip()]
    if not tokens:
        raise SpecError(f"{where} is empty: name the RT vCPUs (e.g. ^0) or drop the key")
    text = mask
    if all(t.startswith("^") for t in tokens):
        text = f"0-{vcpus - 1},{mask}"
    try:
        named = CpuSet.parse(text)
        mentioned = CpuSet.parse(",".join(t.lstrip("^") for t in tokens))
    except CpuListError as exc:
        raise SpecError(f"{where} {mask!r} does not parse: {exc}") from None
    outside = mentioned - every
    if outside:
        raise SpecError(
            f"{where} {mask!r} names vCPU(s) {outside}, but the flavor has {vcpus} vCPUs "
            f"(0-{vcpus - 1}): name vCPUs within 0-{vcpus - 1}"
        )
    if not named:
        raise SpecError(
            f"{where} {mask!r} leaves no real-time vCPU among the flavor's {vcpus} vCPUs: "
            "exclude fewer vCPUs"
        )
    return named


# -- Nova extra specs --------------------------------------------------------------

_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}

NOVA_KEYS = (
    "hw:cpu_policy",
    "hw:cpu_realtime",
    "hw:cpu_realtime_mask",
    "hw:emulator_threads_policy",
    "hw:mem_page_size",
    "hw:pmu",
    "hw:locked_memory",
    "hw:numa_nodes",
)
RTKVM_KEYS = ("rtkvm:cpu_realtime_policy", "rtkvm:cpu_realtime_priority", "rtkvm:iothreads")

_PAGE_ALIASES = {
    "small": "4k",
    "4k": "4k",
    "4kb": "4k",
    "4": "4k",
    "large": "2M",
    "any": "2M",
    "2m": "2M",
    "2mb": "2M",
    "2048": "2M",
    "2048kb": "2M",
    "1g": "1G",
    "1gb": "1G",
    "1048576": "1G",
    "1048576kb": "1G",
}


@dataclass(frozen=True)
class ParsedFlavor:
    spec: RtGuestSpec
    ignored: tuple[str, ...]
    """Extra-spec keys that were not interpreted (other namespaces, unsupported hw: keys)."""


def _bool(key: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise SpecError(f"{key}={value!r}: expected a boolean such as yes/no or true/false")


def _int(key: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise SpecError(f"{key}={value!r}: expected an integer") from None


def _choice(key: str, value: str, choices: tuple[str, ...]) -> str:
    low = value.strip().lower()
    if low not in choices:
        raise SpecError(f"{key}={value!r}: expected one of {', '.join(choices)}")
    return low


def from_extra_specs(
    extra_specs: Mapping[str, str], *, vcpus: int, memory_mib: int, name: str = "rt"
) -> ParsedFlavor:
    """Build a spec from Nova flavor extra specs plus the flavor's vCPUs and RAM.

    As in Nova, a flavor without ``hw:cpu_realtime=yes`` is not real-time and
    one without ``hw:cpu_policy`` is ``shared``; without ``hw:mem_page_size`` a
    real-time flavor gets 2 MiB pages. Keys of other namespaces (``quota:``,
    ``aggregate_instance_extra_specs:``) and unsupported ``hw:`` keys are
    returned in ``ignored`` for the caller to show; unknown ``rtkvm:`` keys
    are refused (a typo in our own namespace).
    """
    fields: dict[str, Any] = {"name": name, "vcpus": vcpus, "memory_mib": memory_mib}
    ignored: list[str] = []
    fields["realtime"] = False
    fields["cpu_policy"] = "shared"
    for key, value in extra_specs.items():
        if key == "hw:cpu_policy":
            fields["cpu_policy"] = _choice(key, value, ("dedicated", "shared", "mixed"))
        elif key == "hw:cpu_realtime":
            fields["realtime"] = _bool(key, value)
        elif key == "hw:cpu_realtime_mask":
            fields["realtime_mask"] = value.strip()
        elif key == "hw:emulator_threads_policy":
            fields["emulator_threads_policy"] = _choice(key, value, ("share", "isolate"))
        elif key == "hw:mem_page_size":
            size = _PAGE_ALIASES.get(value.strip().lower())
            if size is None:
                raise SpecError(
                    f"{key}={value!r}: expected small, large, any, 2MB or 1GB "
                    "(rtkvm maps large and any to 2MB)"
                )
            fields["page_size"] = size
        elif key == "hw:pmu":
            fields["pmu"] = _bool(key, value)
        elif key == "hw:locked_memory":
            fields["locked_memory"] = _bool(key, value)
        elif key == "hw:numa_nodes":
            fields["numa_nodes"] = _int(key, value)
        elif key == "rtkvm:cpu_realtime_policy":
            fields["sched_policy"] = _choice(key, value, ("fifo", "rr"))
        elif key == "rtkvm:cpu_realtime_priority":
            fields["priority"] = _int(key, value)
        elif key == "rtkvm:iothreads":
            fields["iothreads"] = _int(key, value)
        elif key.startswith("rtkvm:"):
            raise SpecError(f"unknown extra spec {key!r}: rtkvm knows {', '.join(RTKVM_KEYS)}")
        else:
            ignored.append(key)
    if "realtime_mask" in fields and not fields["realtime"]:
        raise SpecError(
            "hw:cpu_realtime_mask is set but hw:cpu_realtime is not yes: set hw:cpu_realtime=yes"
        )
    if "page_size" not in fields:
        fields["page_size"] = "4k" if not fields["realtime"] else "2M"
    return ParsedFlavor(_build(fields, "extra specs"), tuple(sorted(ignored)))


_NOVA_PAGE = {"4k": "small", "2M": "2048", "1G": "1048576"}


def to_extra_specs(spec: RtGuestSpec) -> dict[str, str]:
    """Nova extra specs that :func:`from_extra_specs` reads back as ``spec``.

    Nova's own keys say what Nova enforces (pinning, the RT mask, emulator threads,
    pages, PMU, NUMA nodes); the ``rtkvm:`` keys carry what Nova lacks (the vCPUs'
    policy and priority, I/O threads), which rtkvm's node agent applies. Keys at their
    defaults in both readers are left out (``hw:locked_memory=true``, ``hw:numa_nodes=1``).
    """
    out = {"hw:cpu_policy": spec.cpu_policy, "hw:mem_page_size": _NOVA_PAGE[spec.page_size]}
    if spec.realtime:
        out["hw:cpu_realtime"] = "yes"
        if spec.realtime_mask is not None:
            out["hw:cpu_realtime_mask"] = spec.realtime_mask
        out["rtkvm:cpu_realtime_policy"] = spec.sched_policy
        out["rtkvm:cpu_realtime_priority"] = str(spec.priority)
    if not spec.locked_memory:
        out["hw:locked_memory"] = "false"
    if spec.emulator_threads_policy is not None:
        out["hw:emulator_threads_policy"] = spec.emulator_threads_policy
    out["hw:pmu"] = "true" if spec.pmu else "false"
    if spec.numa_nodes != 1:
        out["hw:numa_nodes"] = str(spec.numa_nodes)
    if spec.iothreads:
        out["rtkvm:iothreads"] = str(spec.iothreads)
    return out


def _build(fields: Mapping[str, Any], source: str) -> RtGuestSpec:
    try:
        return RtGuestSpec.model_validate(dict(fields))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'flavor'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SpecError(f"{source}: not a valid RT flavor: {problems}") from None


def parse_extra_spec_args(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["hw:cpu_policy=dedicated", ...]`` -> a dict; refuses items without '='."""
    result: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"extra spec {item!r} is not KEY=VALUE (e.g. hw:cpu_realtime=yes)")
        result[key.strip()] = value.strip()
    return result


def load_flavor(text: str, *, source: str = "flavor") -> ParsedFlavor:
    """Read a flavor file: rtkvm's spec JSON, or a Nova flavor (vcpus, ram, extra_specs)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{source}: not valid JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("flavor"), dict):
        data = data["flavor"]  # the Nova API wraps a flavor in {"flavor": {...}}
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a JSON object")
    if "extra_specs" in data or "ram" in data:
        missing = [k for k in ("vcpus", "ram") if k not in data]
        if missing:
            raise SpecError(f"{source}: a Nova flavor needs {' and '.join(missing)}")
        specs = data.get("extra_specs") or {}
        if not isinstance(specs, dict):
            raise SpecError(f"{source}: extra_specs must be an object of strings")
        try:
            return from_extra_specs(
                {str(k): str(v) for k, v in specs.items()},
                vcpus=int(data["vcpus"]),
                memory_mib=int(data["ram"]),
                name=str(data.get("name", "rt")),
            )
        except (TypeError, ValueError):
            raise SpecError(f"{source}: vcpus and ram must be integers") from None
    return ParsedFlavor(_build(data, source), ())
