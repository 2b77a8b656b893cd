"""Findings: the one report format of every rtkvm check (host doctor, guest audit).

A finding says what was checked (id), how much it matters (severity), how it
came out (status), what was observed and expected, why it matters for
real-time latency, and the concrete fix. A report aggregates findings into a
verdict, counts, a table for people and JSON for machines, and an exit code
(non-zero when any error-severity check fails). This module must not evaluate
any check: it only holds and renders results.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rtkvm.serialize import to_jsonable


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    SKIP = "skip"
    """The check does not apply (e.g. SMT checks on a host without SMT)."""


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    status: Status
    message: str
    """One line for people: what was found, in words."""
    observed: Any = None
    expected: Any = None
    why: str = ""
    fix: str = ""

    @property
    def blocking(self) -> bool:
        """An error that failed, or that could not be verified: makes the verdict negative.

        An unknown is not a pass: a host whose PREEMPT_RT status cannot be read
        is not known to be ready.
        """
        return self.severity is Severity.ERROR and self.status in (Status.FAIL, Status.UNKNOWN)


@dataclass(frozen=True)
class Report:
    """An ordered list of findings with a verdict."""

    subject: str
    """What was checked: a host root, a domain name or file."""
    findings: tuple[Finding, ...]
    ok_verdict: str = "ready"
    bad_verdict: str = "not ready"
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not any(f.blocking for f in self.findings)

    @property
    def verdict(self) -> str:
        return self.ok_verdict if self.ok else self.bad_verdict

    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in Status}
        for finding in self.findings:
            counts[finding.status.value] += 1
        counts["errors_failed"] = sum(
            1 for f in self.findings if f.severity is Severity.ERROR and f.status is Status.FAIL
        )
        counts["errors_unknown"] = sum(
            1 for f in self.findings if f.severity is Severity.ERROR and f.status is Status.UNKNOWN
        )
        counts["warnings_failed"] = sum(
            1 for f in self.findings if f.severity is Severity.WARNING and f.status is Status.FAIL
        )
        return counts

    def exit_code(self) -> int:
        """0 when every error-severity check passed or did not apply, 1 otherwise."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "verdict": self.verdict,
            "counts": self.counts(),
            "notes": list(self.notes),
            "findings": [
                {
                    "id": f.id,
                    "severity": f.severity.value,
                    "status": f.status.value,
                    "message": f.message,
                    "observed": to_jsonable(f.observed),
                    "expected": to_jsonable(f.expected),
                    "why": f.why,
                    "fix": f.fix,
                }
                for f in self.findings
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def render_table(self, *, verbose: bool = False) -> str:
        """A table for people: one row per finding, fixes listed under failures."""
        rows = [("STATUS", "SEVERITY", "CHECK", "OBSERVED", "EXPECTED")]
        for f in self.findings:
            rows.append(
                (
                    f.status.value.upper(),
                    f.severity.value,
                    f.id,
                    _short(f.observed),
                    _short(f.expected),
                )
            )
        lines = [f"{self.subject}: {self.verdict}", ""]
        lines.extend(_format_rows(rows))
        failed = [f for f in self.findings if f.status in (Status.FAIL, Status.UNKNOWN)]
        if failed:
            lines.append("")
            lines.append("What to do:")
            for f in failed:
                lines.append(f"  [{f.status.value}] {f.id}: {f.message}")
                if verbose and f.why:
                    lines.append(f"      why: {f.why}")
                if f.fix:
                    lines.append(f"      fix: {f.fix}")
        for note in self.notes:
            lines.append(f"note: {note}")
        counts = self.counts()
        lines.append("")
        lines.append(
            f"{counts['pass']} passed, {counts['fail']} failed "
            f"({counts['errors_failed']} errors), {counts['unknown']} unknown "
            f"({counts['errors_unknown']} errors), "
            f"{counts['skip']} not applicable"
        )
        return "\n".join(lines)


def _short(value: Any, width: int = 40) -> str:
    if value is None:
        return "-"
    data = to_jsonable(value)
    if data in ("", [], {}):
        return "(none)"
    text = data if isinstance(data, str) else json.dumps(data)
    if isinstance(data, dict) and "unknown" in data:
        text = f"unknown: {data['unknown']}"
    return text if len(text) <= width else text[: width - 1] + "…"


def _format_rows(rows: Sequence[Sequence[str]]) -> Iterable[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        yield "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
