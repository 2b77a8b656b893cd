"""Text and JSON forms of a tuning diff, an apply result, a verify report and a rollback.

This module must not compute anything about the host: it formats values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rtkvm.tune.model import ApplyResult, Change, Check, Status
from rtkvm.tune.plugins.base import shown


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]


def _config_diff(change: Change) -> str:
    """For a config file: only the lines that change."""
    old = (change.before or "").splitlines()
    new = change.after.splitlines()
    removed = [ln for ln in old if ln not in new]
    added = [ln for ln in new if ln not in old]
    return "; ".join([f"-{ln}" for ln in removed] + [f"+{ln}" for ln in added])


def diff_table(changes: Sequence[Change], *, show_all: bool = False) -> str:
    """One row per change that apply would make (``show_all``: also those in effect)."""
    rows = [("SETTING", "TARGET", "BEFORE", "AFTER")]
    needed = [c for c in changes if c.needed]
    for c in changes if show_all else needed:
        if c.kind == "config":
            rows.append((c.setting, c.target, "", _cut(_config_diff(c), 70)))
        else:
            rows.append(
                (c.setting, _cut(c.target, 50), _cut(shown(c.before), 24), _cut(c.after, 24))
            )
    lines = _table(rows) if len(rows) > 1 else ["nothing to change: every setting is in effect"]
    unsupported = [c for c in changes if c.unsupported]
    if unsupported:
        lines.append("")
        lines.extend(f"not applicable: {c.setting}: {c.unsupported}" for c in unsupported)
    in_effect = sum(1 for c in changes if c.in_effect and not c.unsupported)
    lines.append("")
    lines.append(
        f"{len(needed)} changes, {in_effect} already in effect, {len(unsupported)} not applicable"
    )
    return "\n".join(lines)


def why_lines(changes: Sequence[Change]) -> list[str]:
    seen: dict[str, str] = {}
    for c in changes:
        if c.needed:
            seen.setdefault(c.setting, c.why)
    return [f"{s}: {' '.join(w.split())}" for s, w in seen.items()]


def changes_json(changes: Sequence[Change]) -> str:
    data = [
        {
            "setting": c.setting,
            "target": c.target,
            "before": c.before,
            "after": c.after,
            "in_effect": c.in_effect,
            "unsupported": c.unsupported,
            "persistent": c.persistent,
            "why": c.why,
        }
        for c in changes
    ]
    return json.dumps(data, indent=2)


def apply_text(result: ApplyResult) -> str:
    lines = [f"applied {len(result.written)} changes ({result.unchanged} already in effect)"]
    lines.extend(f"refused (normal): {r}" for r in result.refused)
    lines.extend(f"short: {s}" for s in result.short)
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)


def verify_counts(checks: Sequence[Check]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for c in checks:
        counts[c.status.value] += 1
    return counts


def verify_table(checks: Sequence[Check]) -> str:
    rows = [("STATUS", "SETTING", "TARGET", "EXPECTED", "ACTUAL")]
    for c in checks:
        rows.append(
            (
                c.status.value.upper(),
                c.setting,
                _cut(c.target, 44),
                _cut(c.expected, 24),
                _cut(c.actual, 24),
            )
        )
    lines = _table(rows)
    notes = [c for c in checks if c.note and c.status is not Status.OK]
    if notes:
        lines.append("")
        lines.extend(f"[{c.status.value}] {c.setting} {c.target}: {c.note}" for c in notes)
    counts = verify_counts(checks)
    lines.append("")
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def verify_json(checks: Sequence[Check]) -> str:
    data: dict[str, Any] = {
        "counts": verify_counts(checks),
        "checks": [
            {
                "setting": c.setting,
                "target": c.target,
                "status": c.status.value,
                "expected": c.expected,
                "actual": c.actual,
                "why": c.why,
                "note": c.note,
            }
            for c in checks
        ],
    }
    return json.dumps(data, indent=2)
