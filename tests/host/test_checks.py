"""Doctor checks as data: the shipped file is complete, bad files name the check and field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rtkvm.errors import DataError
from rtkvm.findings import Severity
from rtkvm.host.checks import FACT_KINDS, OPS, Kind, parse_checks, shipped_checks
from rtkvm.host.facts import FACT_KEYS

DERIVED = {"target.isolated", "target.housekeeping", "topology.smt_active", "rcu.nocb_cpus"}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def _toml(*checks: dict[str, Any]) -> str:
    blocks = []
    for check in checks:
        lines = ["[[check]]"] + [f"{k} = {_toml_value(v)}" for k, v in check.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _check(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "t.nohz",
        "title": "nohz_full covers the target",
        "severity": "error",
        "fact": "cpus.nohz_full",
        "op": "superset_of",
        "ref": "target.isolated",
        "why": "ticks interrupt RT work",
        "fix": "add nohz_full={isolated}",
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


# -- the shipped file -----------------------------------------------------------------


def test_shipped_checks_load_with_why_and_fix_for_every_check() -> None:
    checks = shipped_checks().checks
    assert len(checks) >= 20
    assert len({c.id for c in checks}) == len(checks)
    for check in checks:
        assert len(check.why) > 40, check.id
        assert len(check.fix) > 20, check.id
        assert check.severity in set(Severity)


@pytest.mark.parametrize(
    ("fact", "op", "field"),
    [
        ("kernel.preempt_rt", "equals", None),
        ("cpus.isolated", "superset_of", None),
        ("cpus.nohz_full", "superset_of", None),
        ("rcu.nocb_cpus", "superset_of", None),
        ("irq.list", "items_disjoint_from", "affinity"),
        ("irq.list", "items_disjoint_from", "effective"),
        ("irq.default_affinity", "disjoint_from", None),
        ("irqbalance.banned", "superset_of", None),
        ("sched.rt_runtime_us", "equals", None),
        ("kernel.timer_migration", "equals", None),
        ("mm.ksm_run", "one_of", None),
        ("mm.thp_enabled", "equals", None),
        ("workqueue.cpumask", "disjoint_from", None),
        ("power.governors", "per_cpu_one_of", None),
        ("power.idle_states", "per_cpu_idle_latency_at_most", None),
        ("topology", "siblings_within", None),
        ("cgroup.rt_group_sched", "equals", None),
        ("proc.capabilities", "has_all", None),
        ("proc.memlock_hard", "limit_at_least", None),
        ("hugepages.free", "any_value_at_least", None),
        ("kvm.present", "equals", None),
    ],
)
def test_shipped_checks_cover_the_issue(fact: str, op: str, field: str | None) -> None:
    matching = [
        c for c in shipped_checks().checks if c.fact == fact and c.op == op and c.field == field
    ]
    assert matching, f"no check of {fact} with {op}"


def test_every_contract_fact_has_a_kind_and_only_derived_keys_are_extra() -> None:
    assert set(FACT_KEYS) <= set(FACT_KINDS)
    assert set(FACT_KINDS) - set(FACT_KEYS) == DERIVED


def test_every_operator_accepts_some_kind() -> None:
    for name, spec in OPS.items():
        assert spec.kinds and spec.kinds <= set(Kind), name


# -- bad files --------------------------------------------------------------------------


def test_a_valid_minimal_file_parses() -> None:
    checks = parse_checks(_toml(_check()), source="mine.toml")
    assert [c.id for c in checks.checks] == ["t.nohz"]
    assert checks.get("t.nohz").ref == "target.isolated"


@pytest.mark.parametrize(
    ("check", "words"),
    [
        (_check(op="bogus"), ["'t.nohz'", "'op'", "unknown op 'bogus'"]),
        (_check(why=None), ["'t.nohz'", "'why'", "missing"]),
        (_check(fix=""), ["'t.nohz'", "'fix'", "must not be empty"]),
        (_check(fact="cpus.nohz"), ["'t.nohz'", "'fact'", "unknown fact 'cpus.nohz'"]),
        (_check(expect=1), ["'t.nohz'", "'expect'", "unknown field"]),
        (_check(severity="fatal"), ["'t.nohz'", "'severity'"]),
        (_check(fact="kernel.release"), ["'t.nohz'", "'op'", "'kernel.release' is text"]),
        (_check(ref=None), ["'t.nohz'", "'ref'", "needs ref"]),
        (_check(ref="kernel.release"), ["'t.nohz'", "'ref'", "not a CPU set"]),
        (_check(expected="2-7"), ["'t.nohz'", "'expected'", "takes no expected"]),
        (_check(fix="nohz_full={isolate}"), ["'t.nohz'", "'fix'", "['isolate']"]),
        (_check(fix="nohz_full={"), ["'t.nohz'", "'fix'", "bad template"]),
        (
            _check(fact="sched.rt_runtime_us", op="equals", ref=None, expected=True),
            ["'t.nohz'", "'expected'", "True"],
        ),
        (
            _check(fact="sched.rt_runtime_us", op="equals", ref=None),
            ["'t.nohz'", "'expected'", "needs an expected value"],
        ),
        (
            _check(fact="mm.ksm_run", op="one_of", ref=None, expected=[]),
            ["'t.nohz'", "'expected'", "non-empty list"],
        ),
        (
            _check(fact="proc.memlock_hard", op="limit_at_least", ref=None, expected="lots"),
            ["'t.nohz'", "'expected'", "unlimited"],
        ),
        (
            _check(fact="irq.list", op="items_disjoint_from", label="IRQ {irq}"),
            ["'t.nohz'", "'field'", "needs the item field"],
        ),
        (
            _check(fact="irq.list", op="items_disjoint_from", field="name", label="IRQ {irq}"),
            ["'t.nohz'", "'field'", "not a CPU-set field"],
        ),
        (
            _check(fact="irq.list", op="items_disjoint_from", field="effective"),
            ["'t.nohz'", "'label'", "needs a label"],
        ),
        (
            _check(fact="irq.list", op="items_disjoint_from", field="effective", label="{number}"),
            ["'t.nohz'", "'label'", "['number']"],
        ),
        (_check(label="IRQ {irq}"), ["'t.nohz'", "'label'", "takes no label"]),
        (
            _check(
                applies_if=[
                    {"fact": "power.cpufreqs", "op": "equals", "expected": True, "otherwise": "x"}
                ]
            ),
            ["'t.nohz'", "'applies_if[1].fact'", "unknown fact 'power.cpufreqs'"],
        ),
        (
            _check(applies_if=[{"fact": "power.cpufreq", "op": "equals", "expected": True}]),
            ["'t.nohz'", "applies_if.0.otherwise", "missing"],
        ),
        (
            _check(applies_if=[{"fact": "power.cpufreq", "op": "equals", "otherwise": "x"}]),
            ["'t.nohz'", "'applies_if[1].expected'", "needs an expected value"],
        ),
        (_check(id=None), ["#1 (no id)", "'id'", "missing"]),
    ],
)
def test_bad_check_names_the_check_and_the_field(check: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(DataError) as info:
        parse_checks(_toml(check), source="mine.toml")
    message = str(info.value)
    assert message.startswith("mine.toml: ")
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[[check]\nid = 1", ["not valid TOML"]),
        ("", ["no [[check]] tables"]),
        ("title = 'x'\n" + _toml(_check()), ["unknown top-level keys ['title']"]),
        (_toml(_check(), _check()), ["'t.nohz'", "duplicate id"]),
    ],
)
def test_bad_file_says_what_to_change(text: str, words: list[str]) -> None:
    with pytest.raises(DataError) as info:
        parse_checks(text, source="mine.toml")
    for word in words:
        assert word in str(info.value)
