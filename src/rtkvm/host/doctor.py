"""The RT readiness doctor: evaluate the doctor checks over a host's facts.

Input: a validated CheckSet, the flat facts dict of
``rtkvm.host.facts.host_facts`` (any value may be Unknown) and an optional
PartitionPlan. Output: a ``findings.Report`` with one finding per check, in
file order, and the verdict ready / not ready.

The *target* sets the checks compare with: with a plan, the isolated set is
``plan.isolated`` and housekeeping is ``plan.housekeeping``; without one, the
isolated set is what the host isolates now (``cpus.isolated``) and
housekeeping is the rest of the online CPUs. Derived values (``target.*``,
``topology.smt_active``, ``rcu.nocb_cpus``) are added to the facts before the
checks run, so the checks only ever name keys.

Rules: an Unknown fact or ref makes the finding unknown, with the reason
(never pass); a failing ``applies_if`` makes it skip, with the condition's
``otherwise`` as the reason. This module must not read the host, print, or
hold any knowledge about a specific setting: that is the TOML file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rtkvm.cpuset import CpuSet
from rtkvm.errors import InputError
from rtkvm.findings import Finding, Report, Status
from rtkvm.host.checks import Check, CheckSet, Condition
from rtkvm.host.doctor_ops import OPERATORS, FactShapeError, OpInput, Outcome, TopologyLike
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import Unknown

NOT_PROVIDED = "not provided by host inspection"


@dataclass(frozen=True)
class Target:
    """The CPU sets the checks are judged against, and where they came from."""

    isolated: CpuSet | Unknown
    housekeeping: CpuSet | Unknown
    source: str
    """'plan <file>' or 'host' (what the host isolates now)."""

    def describe(self) -> str:
        def show(cpus: CpuSet | Unknown) -> str:
            return str(cpus) if isinstance(cpus, Unknown) else (cpus.format() or "none")

        origin = self.source if self.source != "host" else "what the host isolates now"
        return (
            f"target from {origin}: isolated CPUs {show(self.isolated)}, "
            f"housekeeping CPUs {show(self.housekeeping)}"
        )


def target_of(
    facts: Mapping[str, object], plan: PartitionPlan | None, plan_source: str = "plan"
) -> Target:
    """The target sets; raises InputError when the plan names CPUs the host does not have."""
    online = facts.get("cpus.online")
    if plan is not None:
        if isinstance(online, CpuSet) and not plan.all_cpus <= online:
            raise InputError(
                f"{plan_source}: the plan uses CPUs {plan.all_cpus - online}, which are not "
                f"online on this host (online: {online}); make a plan for this host"
            )
        return Target(plan.isolated, plan.housekeeping, f"plan {plan_source}")
    isolated = facts.get("cpus.isolated", Unknown("cpus.isolated", NOT_PROVIDED))
    if not isinstance(isolated, CpuSet | Unknown):
        isolated = Unknown("cpus.isolated", f"not a CPU set: {isolated!r}")
    housekeeping: CpuSet | Unknown
    if isinstance(isolated, Unknown):
        housekeeping = isolated
    elif isinstance(online, CpuSet):
        housekeeping = online - isolated
    else:
        housekeeping = Unknown("cpus.online", NOT_PROVIDED if online is None else str(online))
    return Target(isolated, housekeeping, "host")


def derived_values(facts: Mapping[str, object], target: Target) -> dict[str, object]:
    """The facts plus the values the doctor derives (see FACT_KINDS in checks)."""
    values = dict(facts)
    values["target.isolated"] = target.isolated
    values["target.housekeeping"] = target.housekeeping
    topology = facts.get("topology")
    if isinstance(topology, TopologyLike) and hasattr(topology, "smt_active"):
        values["topology.smt_active"] = bool(topology.smt_active)
    elif isinstance(topology, Unknown):
        values["topology.smt_active"] = topology
    # nohz_full CPUs have their RCU callbacks offloaded too (the kernel adds the
    # nohz_full mask to rcu_nocbs at boot), so the effective set is the union.
    rcu_nocbs = facts.get("cmdline.rcu_nocbs")
    nohz = facts.get("cpus.nohz_full")
    if isinstance(rcu_nocbs, CpuSet):
        values["rcu.nocb_cpus"] = rcu_nocbs | nohz if isinstance(nohz, CpuSet) else rcu_nocbs
    elif isinstance(rcu_nocbs, Unknown):
        values["rcu.nocb_cpus"] = rcu_nocbs
    return values


def evaluate(
    checks: CheckSet,
    facts: Mapping[str, object],
    plan: PartitionPlan | None = None,
    *,
    subject: str = "host",
    plan_source: str = "plan",
) -> Report:
    """Run every check over the facts; the report's verdict is ready / not ready."""
    target = target_of(facts, plan, plan_source)
    values = derived_values(facts, target)
    placeholders = _placeholders(target, values.get("cpus.online"))
    findings = tuple(_finding(check, values, placeholders) for check in checks.checks)
    notes = (target.describe(), f"checks from {checks.source}")
    return Report(subject=subject, findings=findings, notes=notes)


def _finding(
    check: Check, values: Mapping[str, object], placeholders: Mapping[str, str]
) -> Finding:
    fix = check.fix.format_map(placeholders)

    def make(
        status: Status, message: str, observed: object = None, expected: object = None
    ) -> Finding:
        return Finding(
            id=check.id,
            severity=check.severity,
            status=status,
            message=message,
            observed=observed,
            expected=expected,
            why=check.why.strip(),
            fix=fix.strip(),
        )

    for condition in check.applies_if:
        outcome = _run(condition, values)
        if outcome.status is Status.UNKNOWN:
            return make(
                Status.UNKNOWN,
                f"{check.title}: cannot tell whether this applies: {outcome.detail}",
                outcome.observed,
            )
        if outcome.status is Status.FAIL:
            return make(Status.SKIP, f"{check.title}: does not apply: {condition.otherwise}")
    outcome = _run(check, values)
    if outcome.status is Status.PASS:
        return make(Status.PASS, check.title, outcome.observed, outcome.expected)
    return make(
        outcome.status, f"{check.title}: {outcome.detail}", outcome.observed, outcome.expected
    )


def _run(entry: Check | Condition, values: Mapping[str, object]) -> Outcome:
    """Resolve the fact and ref of a check or condition and apply its operator."""
    expected_shown = entry.expected
    ref_value: CpuSet | None = None
    if entry.ref is not None:
        ref = _lookup(values, entry.ref)
        if isinstance(ref, Unknown):
            return Outcome(Status.UNKNOWN, ref, expected_shown, f"{entry.ref}: {ref}")
        if not isinstance(ref, CpuSet):
            return _shape_problem(entry.ref, f"expected a CPU set, got {type(ref).__name__}")
        ref_value = ref
        shown = f"{entry.op} {entry.ref} ({ref.format() or 'none'})"
        expected_shown = shown if entry.expected is None else f"{entry.expected} ({shown})"
    value = _lookup(values, entry.fact)
    if isinstance(value, Unknown):
        return Outcome(Status.UNKNOWN, value, expected_shown, f"{entry.fact}: {value}")
    call = OpInput(
        fact=entry.fact,
        value=value,
        expected=entry.expected,
        ref=entry.ref,
        ref_value=ref_value,
        field=entry.field if isinstance(entry, Check) else None,
        label=entry.label if isinstance(entry, Check) else None,
    )
    try:
        return OPERATORS[entry.op](call)
    except FactShapeError as exc:
        return _shape_problem(entry.fact, str(exc))


def _lookup(values: Mapping[str, object], key: str) -> object:
    if key not in values:
        return Unknown(key, NOT_PROVIDED)
    return values[key]


def _shape_problem(key: str, problem: str) -> Outcome:
    """A fact whose value breaks the facts contract: unknown, and say so plainly."""
    reason = f"value does not match the facts contract ({problem}); please report this"
    return Outcome(Status.UNKNOWN, Unknown(key, reason), None, f"{key}: {reason}")


def _placeholders(target: Target, online: object) -> dict[str, str]:
    """Values for the fix templates; "<...>" where the target does not say yet."""

    def listed(cpus: object, what: str) -> str:
        if isinstance(cpus, CpuSet) and cpus:
            return cpus.format()
        return f"<{what}>"

    def mask(cpus: object, what: str) -> str:
        if isinstance(cpus, CpuSet) and cpus:
            return cpus.format_mask()
        return f"<{what} as a hex mask>"

    undecided = not (isinstance(target.isolated, CpuSet) and target.isolated)
    housekeeping = None if undecided else target.housekeeping
    return {
        "isolated": listed(target.isolated, "CPUs to isolate"),
        "housekeeping": listed(housekeeping, "housekeeping CPUs"),
        "isolated_mask": mask(target.isolated, "CPUs to isolate"),
        "housekeeping_mask": mask(housekeeping, "housekeeping CPUs"),
        "online": listed(online, "online CPUs"),
    }
