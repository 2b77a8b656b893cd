"""The doctor's operators: pure functions from one known fact value to an outcome.

Each operator named in ``rtkvm.host.checks.OPS`` has one function here. It
gets a fact value that is known (the caller has already turned an Unknown fact
into an unknown finding), the check's literal ``expected`` and/or the CPU set
named by ``ref``, and returns pass / fail / unknown with the observed and
expected values to report and one line of words. Values *inside* a fact that
could not be read (one CPU's governor, one IRQ's effective affinity) make the
outcome unknown unless something else already fails: an unknown never passes.

This module must not read the host, know any check id, or decide severity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from rtkvm.cpuset import CpuSet
from rtkvm.errors import HostReadError
from rtkvm.findings import Status
from rtkvm.hostfs import Unknown


@runtime_checkable
class IdleStateLike(Protocol):
    """What the doctor needs of rtkvm.host.power.IdleState."""

    name: str
    latency_us: int
    disabled: bool


@runtime_checkable
class TopologyLike(Protocol):
    """What the doctor needs of rtkvm.host.topology.Topology."""

    def siblings(self, cpu: int) -> CpuSet: ...


@dataclass(frozen=True)
class OpInput:
    """One operator call: the known fact value and what the check compares it with."""

    fact: str
    value: object
    expected: object = None
    ref: str | None = None
    ref_value: CpuSet | None = None
    field: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: Status
    observed: object
    expected: object
    detail: str
    """Words for people: what was found (for a failure: what is wrong)."""


class FactShapeError(Exception):
    """A fact value does not have the shape the facts contract promises (a bug upstream)."""


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, CpuSet):
        return value.format() or "(none)"
    if isinstance(value, str):
        return repr(value)
    return str(value)


T = TypeVar("T")


def _typed(value: object, kind: type[T] | tuple[type[T], ...], what: str) -> T:
    if isinstance(value, kind) and not (isinstance(value, bool) and kind is int):
        return value
    raise FactShapeError(f"expected {what}, got {type(value).__name__}")


def _ref(call: OpInput) -> CpuSet:
    if call.ref_value is None:
        raise FactShapeError(f"operator needs ref, none given for {call.fact}")
    return call.ref_value


def _verdict(ok: bool, call: OpInput, observed: object, expected: object, bad: str) -> Outcome:
    detail = f"{call.fact} is {_show(observed)}" if ok else bad
    return Outcome(Status.PASS if ok else Status.FAIL, observed, expected, detail)


# -- scalars ------------------------------------------------------------------------


def _same_type(call: OpInput, example: object) -> None:
    if type(call.value) is not type(example):
        want, got = type(example).__name__, type(call.value).__name__
        raise FactShapeError(f"expected a {want} like {example!r}, got {got} {call.value!r}")


def equals(call: OpInput) -> Outcome:
    _same_type(call, call.expected)
    ok = call.value == call.expected
    bad = f"{call.fact} is {_show(call.value)}, expected {_show(call.expected)}"
    return _verdict(ok, call, call.value, call.expected, bad)


def not_equals(call: OpInput) -> Outcome:
    _same_type(call, call.expected)
    ok = call.value != call.expected
    bad = f"{call.fact} is {_show(call.value)}"
    return _verdict(ok, call, call.value, f"not {_show(call.expected)}", bad)


def one_of(call: OpInput) -> Outcome:
    options = _typed(call.expected, list, "a list")
    _same_type(call, options[0])
    ok = call.value in options
    shown = ", ".join(_show(o) for o in options)
    bad = f"{call.fact} is {_show(call.value)}, expected one of {shown}"
    return _verdict(ok, call, call.value, options, bad)


def at_least(call: OpInput) -> Outcome:
    value = _typed(call.value, int, "an integer")
    limit = _typed(call.expected, int, "an integer")
    bad = f"{call.fact} is {value}, expected at least {limit}"
    return _verdict(value >= limit, call, value, f">= {limit}", bad)


def at_most(call: OpInput) -> Outcome:
    value = _typed(call.value, int, "an integer")
    limit = _typed(call.expected, int, "an integer")
    bad = f"{call.fact} is {value}, expected at most {limit}"
    return _verdict(value <= limit, call, value, f"<= {limit}", bad)


# -- sets and lists -------------------------------------------------------------------


def not_empty(call: OpInput) -> Outcome:
    value = call.value
    if not isinstance(value, CpuSet | list):
        raise FactShapeError(f"expected a CPU set or a list, got {type(value).__name__}")
    return _verdict(bool(value), call, value, "not empty", f"{call.fact} is empty")


def contains(call: OpInput) -> Outcome:
    value = _typed(call.value, list, "a list")
    bad = f"{call.fact} is [{', '.join(map(str, value))}], without {call.expected!r}"
    return _verdict(call.expected in value, call, value, f"includes {call.expected}", bad)


def superset_of(call: OpInput) -> Outcome:
    value, ref = _typed(call.value, CpuSet, "a CPU set"), _ref(call)
    missing = ref - value
    bad = f"{call.fact} is {_show(value)}; it lacks CPUs {missing} of {call.ref} ({ref})"
    return _verdict(not missing, call, value, f"includes {_show(ref)}", bad)


def subset_of(call: OpInput) -> Outcome:
    value, ref = _typed(call.value, CpuSet, "a CPU set"), _ref(call)
    extra = value - ref
    bad = f"{call.fact} is {_show(value)}: CPUs {extra} are outside {call.ref} ({ref})"
    return _verdict(not extra, call, value, f"within {_show(ref)}", bad)


def disjoint_from(call: OpInput) -> Outcome:
    value, ref = _typed(call.value, CpuSet, "a CPU set"), _ref(call)
    overlap = value & ref
    bad = f"{call.fact} is {_show(value)}: it includes CPUs {overlap} of {call.ref}"
    return _verdict(not overlap, call, value, f"none of {_show(ref)}", bad)


def items_disjoint_from(call: OpInput) -> Outcome:
    """Each item's ``field`` (a CPU set) must avoid ref; offenders are named by ``label``."""
    items = _typed(call.value, list, "a list")
    ref, field, label = _ref(call), call.field or "", call.label or "{}"
    offenders: list[str] = []
    unknown: list[str] = []
    for item in items:
        name = label.format_map(_Fields(item))
        cpus = getattr(item, field, None)
        if isinstance(cpus, Unknown):
            unknown.append(f"{name}: {cpus.reason}")
        elif isinstance(cpus, CpuSet):
            if cpus & ref:
                offenders.append(f"{name} on {cpus & ref}")
        else:
            raise FactShapeError(f"item {name} has no CPU-set field {field!r}")
    expected = f"no {field} CPU in {_show(ref)}"
    if offenders:
        detail = f"{len(offenders)} of {len(items)} on {call.ref}: " + "; ".join(offenders)
        return Outcome(Status.FAIL, offenders, expected, detail)
    if unknown:
        detail = f"{len(unknown)} of {len(items)} could not be read: " + "; ".join(unknown[:5])
        return Outcome(Status.UNKNOWN, unknown, expected, detail)
    return Outcome(Status.PASS, f"{len(items)} items, none on {_show(ref)}", expected, "none")


class _Fields(dict[str, object]):
    """format_map adapter: ``{irq}`` reads the item's attribute."""

    def __init__(self, item: object) -> None:
        super().__init__()
        self._item = item

    def __missing__(self, key: str) -> object:
        if not hasattr(self._item, key):
            raise FactShapeError(f"item {self._item!r} has no field {key!r}")
        return getattr(self._item, key)


# -- per CPU --------------------------------------------------------------------------


def _per_cpu(
    call: OpInput, judge: Callable[[int, object], str | None], expected: object
) -> Outcome:
    """Apply ``judge`` (problem text or None) to the value of each CPU of ref."""
    table = _typed(call.value, dict, "a mapping of CPU to value")
    ref = _ref(call)
    observed: dict[int, object] = {}
    bad: list[str] = []
    unknown: list[str] = []
    for cpu in ref:
        if cpu not in table:
            unknown.append(f"CPU {cpu}: not reported")
            continue
        value = table[cpu]
        observed[cpu] = value
        if isinstance(value, Unknown):
            unknown.append(f"CPU {cpu}: {value.reason}")
            continue
        problem = judge(cpu, value)
        if problem:
            bad.append(problem)
    if bad:
        return Outcome(Status.FAIL, observed, expected, "; ".join(bad))
    if unknown:
        return Outcome(Status.UNKNOWN, observed, expected, "; ".join(unknown))
    return Outcome(Status.PASS, observed, expected, f"all of CPUs {_show(ref)} as expected")


def per_cpu_one_of(call: OpInput) -> Outcome:
    options = _typed(call.expected, list, "a list")

    def judge(cpu: int, value: object) -> str | None:
        return None if value in options else f"CPU {cpu}: {_show(value)}"

    return _per_cpu(call, judge, options)


def per_cpu_idle_latency_at_most(call: OpInput) -> Outcome:
    limit = _typed(call.expected, int, "an integer")

    def judge(cpu: int, value: object) -> str | None:
        states = _typed(value, list, "a list of idle states")
        deep: list[str] = []
        for state in states:
            if not isinstance(state, IdleStateLike):
                raise FactShapeError(f"idle state {state!r} lacks name, latency_us or disabled")
            if not state.disabled and state.latency_us > limit:
                deep.append(f"{state.name} ({state.latency_us} us)")
        return f"CPU {cpu}: {', '.join(deep)} enabled" if deep else None

    return _per_cpu(call, judge, f"no enabled idle state above {limit} us")


def siblings_within(call: OpInput) -> Outcome:
    """Every SMT sibling of each CPU of ref is itself in ref (whole cores)."""
    topology = call.value
    if not isinstance(topology, TopologyLike):
        raise FactShapeError(f"expected a topology, got {type(topology).__name__}")
    ref = _ref(call)
    outside: dict[int, CpuSet] = {}
    for cpu in ref:
        try:
            siblings = topology.siblings(cpu)
        except HostReadError as exc:
            detail = f"CPU {cpu} of {call.ref}: {exc}"
            return Outcome(Status.UNKNOWN, Unknown(exc.path, exc.reason), None, detail)
        if siblings - ref:
            outside[cpu] = siblings - ref
    expected = f"whole cores: siblings of {_show(ref)} within it"
    if outside:
        words = "; ".join(f"CPU {cpu} shares its core with {s}" for cpu, s in outside.items())
        return Outcome(Status.FAIL, outside, expected, words)
    return Outcome(Status.PASS, "whole cores", expected, "every sibling is in the set")


# -- process limits, capabilities, pools ------------------------------------------------


def _cap(name: str) -> str:
    upper = name.strip().upper()
    return upper if upper.startswith("CAP_") else f"CAP_{upper}"


def has_all(call: OpInput) -> Outcome:
    caps = {_cap(str(c)) for c in _typed(call.value, (set, frozenset), "a set of names")}
    wanted = [_cap(str(c)) for c in _typed(call.expected, list, "a list")]
    observed = {cap: cap in caps for cap in wanted}
    missing = [cap for cap, present in observed.items() if not present]
    bad = f"missing {', '.join(missing)}"
    return _verdict(not missing, call, observed, wanted, bad)


def _bytes(value: int | None) -> str:
    if value is None:
        return "unlimited"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"


def limit_at_least(call: OpInput) -> Outcome:
    value = call.value
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise FactShapeError(f"expected bytes or None, got {type(value).__name__}")
    limit = None if call.expected == "unlimited" else _typed(call.expected, int, "an integer")
    ok = value is None or (limit is not None and value >= limit)
    observed = "unlimited" if value is None else value
    expected = "unlimited" if limit is None else f">= {limit}"
    bad = f"{call.fact} is {_bytes(value)}, expected {_bytes(limit)}"
    outcome = _verdict(ok, call, observed, expected, bad)
    return outcome if not ok else Outcome(Status.PASS, observed, expected, _bytes(value))


def any_value_at_least(call: OpInput) -> Outcome:
    table = _typed(call.value, dict, "a mapping")
    limit = _typed(call.expected, int, "an integer")
    observed = {f"{size}kB": count for size, count in sorted(table.items())}
    ok = any(isinstance(c, int) and c >= limit for c in table.values())
    bad = f"{call.fact}: " + (
        ", ".join(f"{k}: {v}" for k, v in observed.items()) or "no page sizes"
    )
    return _verdict(ok, call, observed, f"some size with >= {limit}", bad)


# -- experiments ------------------------------------------------------------------------


def succeeded(call: OpInput) -> Outcome:
    """An experiment (rtkvm.host.experiments.Trial: ``ok``, ``detail``) that worked."""
    ok, detail = getattr(call.value, "ok", None), getattr(call.value, "detail", None)
    if not isinstance(ok, bool) or not isinstance(detail, str):
        raise FactShapeError(f"expected an experiment's trial, got {call.value!r}")
    status = Status.PASS if ok else Status.FAIL
    return Outcome(status, ok, True, detail)


OPERATORS: Mapping[str, Callable[[OpInput], Outcome]] = {
    "equals": equals,
    "not_equals": not_equals,
    "one_of": one_of,
    "at_least": at_least,
    "at_most": at_most,
    "not_empty": not_empty,
    "contains": contains,
    "superset_of": superset_of,
    "subset_of": subset_of,
    "disjoint_from": disjoint_from,
    "items_disjoint_from": items_disjoint_from,
    "per_cpu_one_of": per_cpu_one_of,
    "per_cpu_idle_latency_at_most": per_cpu_idle_latency_at_most,
    "siblings_within": siblings_within,
    "has_all": has_all,
    "limit_at_least": limit_at_least,
    "any_value_at_least": any_value_at_least,
    "succeeded": succeeded,
}
"""Operator name (as in checks.OPS) -> implementation."""
