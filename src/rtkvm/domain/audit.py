"""Audit of any libvirt domain against the real-time rules and a host partition.

:func:`audit_domain` reads a :class:`Domain` (parsed from XML written by
rtkvm, Nova, KubeVirt or by hand) and returns a :class:`Report` in the host
doctor's finding format (verdict ``rt-ready`` / ``not rt-ready``, exit code 1
when an error-severity rule fails). The rules' texts, severities, why and fix
live in ``rtkvm/data/guest_audit.toml``; the checks, one per rule id, in
:mod:`rtkvm.domain.audit_checks`; shipped data whose ids do not match the
checks is refused.

What the host is, is passed in (:class:`AuditHost`: housekeeping CPUs, the
plan's RT CPUs, the topology); a check that needs what was not given reports
``unknown`` and says which option supplies it. This module must not read the
host, talk to libvirt, or change the domain.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rtkvm.cpuset import CpuSet
from rtkvm.domain.audit_checks import (
    CHECKS,
    RT_SCHEDULERS,
    AuditContext,
    AuditHost,
    Outcome,
)
from rtkvm.domain.xml import Domain
from rtkvm.errors import DataError
from rtkvm.findings import Finding, Report, Severity, Status
from rtkvm.shipped import parse_toml, shipped_text

__all__ = ["AuditHost", "AuditRule", "Outcome", "audit_domain", "load_rules", "rt_vcpus_of"]


class AuditRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str
    severity: Severity
    pass_: str = Field(alias="pass")
    fail: str
    why: str
    fix: str
    waived_by: tuple[str, ...] = ()
    """Host quirks (``rtkvm.runtime.quirks`` ids) that make this rule fail on any guest of
    the host whatever the guest's design: a failure there is the host's known waiver."""


def waived_failures(
    report: Report, present_quirks: set[str], rules: tuple[AuditRule, ...] | None = None
) -> dict[str, str]:
    """Failed rules a present host quirk explains: rule id -> the quirk."""
    by_id = {r.id: r for r in (rules if rules is not None else load_rules())}
    out = {}
    for finding in report.findings:
        if finding.status is not Status.FAIL:
            continue
        quirk = next((q for q in by_id[finding.id].waived_by if q in present_quirks), None)
        if quirk is not None:
            out[finding.id] = quirk
    return out


# -- driver -----------------------------------------------------------------------------


def load_rules(text: str | None = None) -> tuple[AuditRule, ...]:
    """The shipped rules (or ``text``); DataError when they do not match the checks."""
    if text is None:
        text = shipped_text("guest_audit.toml")
    items = parse_toml(text, "guest_audit.toml").get("rule", [])
    try:
        if not isinstance(items, list):
            raise DataError("guest_audit.toml: 'rule' must be an array of tables ([[rule]])")
        rules = tuple(AuditRule.model_validate(item) for item in items)
    except ValidationError as exc:
        raise DataError(f"guest_audit.toml: {exc}") from None
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise DataError(f"guest_audit.toml: duplicate rule ids in {ids}")
    missing, unknown = set(CHECKS) - set(ids), set(ids) - set(CHECKS)
    if missing or unknown:
        raise DataError(
            f"guest_audit.toml: rules without data {sorted(missing)}, "
            f"data without a check {sorted(unknown)}"
        )
    return rules


def rt_vcpus_of(domain: Domain) -> tuple[CpuSet, bool]:
    """The RT vCPUs (those with fifo/rr) and whether any were declared."""
    scheds = domain.cputune.vcpuscheds if domain.cputune is not None else ()
    rt = CpuSet().union(*(s.vcpus for s in scheds if s.scheduler in RT_SCHEDULERS))
    rt = rt & CpuSet(range(domain.vcpus))
    if rt:
        return rt, True
    return CpuSet(range(domain.vcpus)), False


def audit_domain(
    domain: Domain,
    host: AuditHost | None = None,
    *,
    rules: tuple[AuditRule, ...] | None = None,
    subject: str | None = None,
) -> Report:
    """Check ``domain`` against every rule; the report's exit code follows the doctor's."""
    host = host or AuditHost()
    rules = rules if rules is not None else load_rules()
    rt, declared = rt_vcpus_of(domain)
    pins = {p.vcpu: p.cpuset for p in domain.cputune.vcpupins} if domain.cputune else {}
    if domain.vcpu_cpuset is not None:
        for v in range(domain.vcpus):
            pins.setdefault(v, domain.vcpu_cpuset)
    ctx = AuditContext(domain, host, rt, declared, pins)
    findings = []
    for rule in rules:
        out = CHECKS[rule.id](ctx)
        if out.status in (Status.SKIP, Status.UNKNOWN):
            message = out.detail
        else:
            base = rule.pass_ if out.status is Status.PASS else rule.fail
            message = f"{base}: {out.detail}" if out.detail else base
        findings.append(
            Finding(
                id=rule.id,
                severity=rule.severity,
                status=out.status,
                message=message,
                observed=out.observed,
                expected=out.expected,
                why=rule.why,
                fix=rule.fix if out.status is Status.FAIL else "",
            )
        )
    note = (
        f"RT vCPUs (from <vcpusched> fifo/rr): {rt}"
        if declared
        else f"no vCPU declares a real-time scheduler: all {domain.vcpus} vCPUs audited as RT"
    )
    return Report(
        subject=subject or f"domain {domain.name}",
        findings=tuple(findings),
        ok_verdict="rt-ready",
        bad_verdict="not rt-ready",
        notes=(note,),
    )
