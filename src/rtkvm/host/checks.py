"""Doctor checks as data: the typed model of ``data/doctor_checks.toml`` and its loader.

A check names a fact (a key of the facts dict that inspection produces, or a
value the doctor derives from it and the plan), an operator, what is expected
(a literal ``expected`` or a ``ref`` to another value), why it matters for RT
latency and the concrete fix. The loader validates everything it can before a
host is ever read: unknown fields, unknown operators, unknown fact keys, an
operator applied to the wrong kind of fact, an expected value of the wrong
type, unknown placeholders in ``fix`` and ``label``, duplicate ids. Each
problem raises DataError naming the file, the check id and the field.

This module must not read the host or evaluate a check: that is
``rtkvm.host.doctor``. It knows the *shape* of every fact (FACT_KINDS, the
facts contract), not how to read it.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from rtkvm.errors import DataError
from rtkvm.findings import Severity
from rtkvm.shipped import parse_toml, shipped_text


class Kind(enum.StrEnum):
    """The shape of a fact's value (the facts contract, by type)."""

    BOOL = "bool"
    INT = "int"
    TEXT = "text"
    CPUSET = "cpu set"
    TEXT_LIST = "list of text"
    ARGS = "kernel arguments"
    IRQ_LIST = "list of IRQs"
    CPU_TEXT_MAP = "text per CPU"
    IDLE_MAP = "idle states per CPU"
    CAPS = "set of capabilities"
    LIMIT = "resource limit (None = unlimited)"
    SIZE_MAP = "pages per page size"
    TOPOLOGY = "topology"
    NIC_LIST = "list of NICs"
    TRIAL = "experiment (ok, detail)"


FACT_KINDS: Mapping[str, Kind] = {
    # produced by rtkvm.host.facts.host_facts (the facts contract)
    "kernel.release": Kind.TEXT,
    "kernel.preempt_rt": Kind.BOOL,
    "topology": Kind.TOPOLOGY,
    "cpus.online": Kind.CPUSET,
    "cpus.isolated": Kind.CPUSET,
    "cpus.nohz_full": Kind.CPUSET,
    "cmdline.raw": Kind.TEXT,
    "cmdline.args": Kind.ARGS,
    "cmdline.isolcpus": Kind.CPUSET,
    "cmdline.isolcpus_flags": Kind.TEXT_LIST,
    "cmdline.nohz_full": Kind.CPUSET,
    "cmdline.rcu_nocbs": Kind.CPUSET,
    "cmdline.irqaffinity": Kind.CPUSET,
    "cmdline.init_args": Kind.TEXT_LIST,
    "sched.rt_runtime_us": Kind.INT,
    "sched.rt_period_us": Kind.INT,
    "kernel.timer_migration": Kind.INT,
    "kernel.nmi_watchdog": Kind.INT,
    "vm.stat_interval": Kind.INT,
    "mm.ksm_run": Kind.INT,
    "mm.thp_enabled": Kind.TEXT,
    "mm.thp_defrag": Kind.TEXT,
    "workqueue.cpumask": Kind.CPUSET,
    "irq.default_affinity": Kind.CPUSET,
    "irq.list": Kind.IRQ_LIST,
    "irqbalance.running": Kind.BOOL,
    "irqbalance.banned": Kind.CPUSET,
    "power.governors": Kind.CPU_TEXT_MAP,
    "power.cpufreq": Kind.BOOL,
    "power.idle_driver": Kind.TEXT,
    "power.idle_states": Kind.IDLE_MAP,
    "cgroup.version": Kind.TEXT,
    "cgroup.rt_group_sched": Kind.BOOL,
    "proc.capabilities": Kind.CAPS,
    "proc.memlock_soft": Kind.LIMIT,
    "proc.memlock_hard": Kind.LIMIT,
    "hugepages.total": Kind.SIZE_MAP,
    "hugepages.free": Kind.SIZE_MAP,
    "kvm.present": Kind.BOOL,
    "nics": Kind.NIC_LIST,
    "probe.sched_fifo": Kind.TRIAL,
    "probe.memlock": Kind.TRIAL,
    "probe.kvm_vcpu": Kind.TRIAL,
    # derived by rtkvm.host.doctor from the facts and the optional plan
    "target.isolated": Kind.CPUSET,
    "target.housekeeping": Kind.CPUSET,
    "topology.smt_active": Kind.BOOL,
    "rcu.nocb_cpus": Kind.CPUSET,
}
"""Every key a check may name, with the shape of its value."""

ITEM_FIELDS: Mapping[Kind, Mapping[str, Kind]] = {
    Kind.IRQ_LIST: {
        "irq": Kind.INT,
        "name": Kind.TEXT,
        "affinity": Kind.CPUSET,
        "effective": Kind.CPUSET,
    },
}
"""Fields of the items of list facts (for ``items_disjoint_from`` and ``label``)."""

FIX_PLACEHOLDERS = frozenset(
    {"isolated", "housekeeping", "isolated_mask", "housekeeping_mask", "online"}
)
"""Names a ``fix`` template may use; filled from the plan or the host."""

_SCALARS: Mapping[Kind, tuple[type, ...]] = {
    Kind.BOOL: (bool,),
    Kind.INT: (int,),
    Kind.TEXT: (str,),
}


def _scalar_ok(kind: Kind, value: object) -> bool:
    if kind is Kind.INT and isinstance(value, bool):
        return False
    return isinstance(value, _SCALARS[kind])


def _expect_scalar(kind: Kind, value: object) -> str | None:
    return None if _scalar_ok(kind, value) else f"must be a {kind.value} like the fact"


def _expect_scalar_list(kind: Kind, value: object) -> str | None:
    if isinstance(value, list) and value and all(_scalar_ok(kind, v) for v in value):
        return None
    return f"must be a non-empty list of {kind.value} values"


def _expect_int(_kind: Kind, value: object) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    return None if ok else "must be an integer"


def _expect_text(_kind: Kind, value: object) -> str | None:
    return None if isinstance(value, str) and value else "must be a non-empty string"


def _expect_text_list(_kind: Kind, value: object) -> str | None:
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return None
    return "must be a non-empty list of strings"


def _expect_limit(_kind: Kind, value: object) -> str | None:
    if value == "unlimited" or (isinstance(value, int) and not isinstance(value, bool)):
        return None
    return 'must be a number of bytes or "unlimited"'


@dataclass(frozen=True)
class OpSpec:
    """What an operator accepts: fact kinds, and whether it takes expected and/or ref."""

    kinds: frozenset[Kind]
    expected: Callable[[Kind, object], str | None] | None = None
    """Validator of ``expected`` (returns a problem or None); None = no expected."""
    ref: bool = False
    """True when the operator compares with a CPU set named by ``ref``."""
    items: bool = False
    """True when the operator looks at one field of each item (needs ``field``)."""


_SCALAR_KINDS = frozenset({Kind.BOOL, Kind.INT, Kind.TEXT})
_SETS = frozenset({Kind.CPUSET})

OPS: Mapping[str, OpSpec] = {
    "equals": OpSpec(_SCALAR_KINDS, expected=_expect_scalar),
    "not_equals": OpSpec(_SCALAR_KINDS, expected=_expect_scalar),
    "one_of": OpSpec(_SCALAR_KINDS, expected=_expect_scalar_list),
    "at_least": OpSpec(frozenset({Kind.INT}), expected=_expect_int),
    "at_most": OpSpec(frozenset({Kind.INT}), expected=_expect_int),
    "not_empty": OpSpec(frozenset({Kind.CPUSET, Kind.TEXT_LIST})),
    "contains": OpSpec(frozenset({Kind.TEXT_LIST}), expected=_expect_text),
    "superset_of": OpSpec(_SETS, ref=True),
    "subset_of": OpSpec(_SETS, ref=True),
    "disjoint_from": OpSpec(_SETS, ref=True),
    "items_disjoint_from": OpSpec(frozenset({Kind.IRQ_LIST}), ref=True, items=True),
    "per_cpu_one_of": OpSpec(frozenset({Kind.CPU_TEXT_MAP}), expected=_expect_text_list, ref=True),
    "per_cpu_idle_latency_at_most": OpSpec(
        frozenset({Kind.IDLE_MAP}), expected=_expect_int, ref=True
    ),
    "siblings_within": OpSpec(frozenset({Kind.TOPOLOGY}), ref=True),
    "has_all": OpSpec(frozenset({Kind.CAPS}), expected=_expect_text_list),
    "limit_at_least": OpSpec(frozenset({Kind.LIMIT}), expected=_expect_limit),
    "any_value_at_least": OpSpec(frozenset({Kind.SIZE_MAP}), expected=_expect_int),
    "succeeded": OpSpec(frozenset({Kind.TRIAL})),
}
"""The operators; their semantics live in rtkvm.host.doctor."""


class Condition(BaseModel):
    """One ``applies_if`` entry: the check is skipped (with ``otherwise``) when it fails."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fact: str
    op: str
    expected: Any = None
    ref: str | None = None
    otherwise: str
    """Why the check does not apply, shown as the skip reason."""


class Check(BaseModel):
    """One doctor check, as written in the TOML file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    severity: Severity
    fact: str
    op: str
    expected: Any = None
    ref: str | None = None
    field: str | None = None
    """For item operators: the item field compared (e.g. ``effective`` of each IRQ)."""
    label: str | None = None
    """For item operators: how to name an offending item, e.g. ``IRQ {irq} ({name})``."""
    why: str
    fix: str
    applies_if: tuple[Condition, ...] = ()

    @field_validator("id", "title", "why", "fix")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


@dataclass(frozen=True)
class CheckSet:
    """The validated checks of one file, in file order."""

    source: str
    checks: tuple[Check, ...]

    def get(self, check_id: str) -> Check:
        for check in self.checks:
            if check.id == check_id:
                return check
        raise KeyError(check_id)


SHIPPED = "doctor_checks.toml"


def shipped_checks() -> CheckSet:
    """The checks shipped in the package (``rtkvm/data/doctor_checks.toml``)."""
    return parse_checks(shipped_text(SHIPPED), source=f"rtkvm/data/{SHIPPED}")


def parse_checks(text: str, *, source: str) -> CheckSet:
    """Parse and validate a checks file; any problem raises DataError saying what to change."""
    data = parse_toml(text, source)
    extra = sorted(set(data) - {"check"})
    if extra:
        raise DataError(f"{source}: unknown top-level keys {extra}; only [[check]] tables")
    entries = data.get("check")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{source}: no [[check]] tables")
    checks: list[Check] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        name = _entry_name(entry, index)
        try:
            check = Check.model_validate(entry)
        except ValidationError as exc:
            raise DataError(f"{source}: check {name}: {_pydantic_problem(exc)}") from None
        if check.id in seen:
            raise DataError(f"{source}: check {name}: field 'id': duplicate id; ids must be unique")
        seen.add(check.id)
        _validate(check, source)
        checks.append(check)
    return CheckSet(source, tuple(checks))


def _entry_name(entry: object, index: int) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        return repr(entry["id"])
    return f"#{index} (no id)"


def _pydantic_problem(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = "missing" if error["type"] == "missing" else error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field (typo?)"
        problems.append(f"field '{where}': {message}")
    return "; ".join(problems)


def _validate(check: Check, source: str) -> None:
    def fail(field: str, problem: str) -> DataError:
        return DataError(f"{source}: check {check.id!r}: field {field!r}: {problem}")

    _validate_comparison(check.fact, check.op, check.expected, check.ref, "", fail)
    spec = OPS[check.op]
    kind = FACT_KINDS[check.fact]
    if spec.items:
        fields = ITEM_FIELDS[kind]
        if check.field is None:
            raise fail("field", f"op {check.op!r} needs the item field to compare")
        if fields.get(check.field) is not Kind.CPUSET:
            cpu_fields = sorted(f for f, k in fields.items() if k is Kind.CPUSET)
            raise fail("field", f"{check.field!r} is not a CPU-set field; use one of {cpu_fields}")
        if not check.label:
            raise fail("label", f"op {check.op!r} needs a label naming an item, e.g. 'IRQ {{irq}}'")
        _validate_template(check.label, set(fields), "label", fail)
    else:
        for name, value in (("field", check.field), ("label", check.label)):
            if value is not None:
                raise fail(name, f"op {check.op!r} takes no {name}; remove it")
    _validate_template(check.fix, FIX_PLACEHOLDERS, "fix", fail)
    for number, cond in enumerate(check.applies_if, start=1):
        prefix = f"applies_if[{number}]."
        _validate_comparison(cond.fact, cond.op, cond.expected, cond.ref, prefix, fail)
        if OPS[cond.op].items:
            raise fail(f"{prefix}op", f"op {cond.op!r} cannot be a condition")


def _validate_comparison(
    fact: str,
    op: str,
    expected: object,
    ref: str | None,
    prefix: str,
    fail: Callable[[str, str], DataError],
) -> None:
    if fact not in FACT_KINDS:
        raise fail(f"{prefix}fact", f"unknown fact {fact!r}; known facts: {sorted(FACT_KINDS)}")
    if op not in OPS:
        raise fail(f"{prefix}op", f"unknown op {op!r}; known ops: {sorted(OPS)}")
    spec = OPS[op]
    kind = FACT_KINDS[fact]
    if kind not in spec.kinds:
        accepted = ", ".join(sorted(k.value for k in spec.kinds))
        raise fail(f"{prefix}op", f"op {op!r} works on {accepted}, but {fact!r} is {kind.value}")
    if spec.expected is None:
        if expected is not None:
            raise fail(f"{prefix}expected", f"op {op!r} takes no expected value; remove it")
    else:
        if expected is None:
            raise fail(f"{prefix}expected", f"op {op!r} needs an expected value")
        problem = spec.expected(kind, expected)
        if problem:
            raise fail(f"{prefix}expected", f"{expected!r} {problem}")
    if spec.ref:
        if ref is None:
            raise fail(f"{prefix}ref", f"op {op!r} needs ref, the CPU set to compare with")
        if FACT_KINDS.get(ref) is not Kind.CPUSET:
            sets = sorted(k for k, v in FACT_KINDS.items() if v is Kind.CPUSET)
            raise fail(f"{prefix}ref", f"{ref!r} is not a CPU set; use one of {sets}")
    elif ref is not None:
        raise fail(f"{prefix}ref", f"op {op!r} takes no ref; remove it")


def _validate_template(
    template: str,
    allowed: set[str] | frozenset[str],
    field: str,
    fail: Callable[[str, str], DataError],
) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise fail(field, f"bad template ({exc}); write {{{{ and }}}} for literal braces") from None
    unknown = sorted(n for n in names if n not in allowed)
    if unknown:
        raise fail(field, f"unknown placeholders {unknown}; allowed: {sorted(allowed)}")
