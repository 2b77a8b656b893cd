"""Findings and reports: verdicts, counts, exit codes and both renderings."""

from __future__ import annotations

import json

from rtkvm.cpuset import CpuSet
from rtkvm.findings import Finding, Report, Severity, Status
from rtkvm.hostfs import Unknown


def _report(*findings: Finding) -> Report:
    return Report(subject="host /", findings=findings)


PASS = Finding("kvm", Severity.ERROR, Status.PASS, "/dev/kvm present", True, True)
WARN = Finding("thp", Severity.WARNING, Status.FAIL, "THP is always", "always", "never", fix="x")
FAIL = Finding(
    "isolated",
    Severity.ERROR,
    Status.FAIL,
    "no CPU is isolated",
    CpuSet(),
    CpuSet.parse("2-7"),
    why="the scheduler puts tasks there",
    fix="add isolcpus=managed_irq,domain,2-7",
)
UNK = Finding("nohz", Severity.ERROR, Status.UNKNOWN, "cannot tell", Unknown("/sys/x", "gone"))


def test_warnings_do_not_block_errors_do() -> None:
    assert _report(PASS, WARN).ok and _report(PASS, WARN).exit_code() == 0
    assert _report(PASS, WARN).verdict == "ready"
    bad = _report(PASS, FAIL)
    assert not bad.ok and bad.exit_code() == 1 and bad.verdict == "not ready"


def test_unknown_error_blocks_the_verdict() -> None:
    report = _report(PASS, UNK)
    assert report.counts()["unknown"] == 1 and report.counts()["errors_unknown"] == 1
    assert not report.ok and report.verdict == "not ready" and report.exit_code() == 1
    assert "[unknown] nohz: cannot tell" in report.render_table()


def test_unknown_warning_does_not_block() -> None:
    unknown_warning = Finding("thp", Severity.WARNING, Status.UNKNOWN, "cannot tell")
    assert _report(PASS, unknown_warning).ok


def test_empty_values_read_as_none_in_the_table() -> None:
    assert "(none)" in _report(FAIL).render_table()


def test_json_shape() -> None:
    data = json.loads(_report(PASS, WARN, FAIL, UNK).to_json())
    assert data["verdict"] == "not ready"
    assert data["counts"]["fail"] == 2 and data["counts"]["errors_failed"] == 1
    assert data["counts"]["errors_unknown"] == 1
    iso = next(f for f in data["findings"] if f["id"] == "isolated")
    assert iso == {
        "id": "isolated",
        "severity": "error",
        "status": "fail",
        "message": "no CPU is isolated",
        "observed": "",
        "expected": "2-7",
        "why": "the scheduler puts tasks there",
        "fix": "add isolcpus=managed_irq,domain,2-7",
    }
    nohz = next(f for f in data["findings"] if f["id"] == "nohz")
    assert nohz["observed"] == {"unknown": "gone", "source": "/sys/x"}


def test_table_lists_fixes_for_failures() -> None:
    text = _report(PASS, FAIL).render_table(verbose=True)
    assert text.startswith("host /: not ready")
    assert "fix: add isolcpus=managed_irq,domain,2-7" in text
    assert "why: the scheduler puts tasks there" in text
    assert "1 passed, 1 failed (1 errors)" in text
