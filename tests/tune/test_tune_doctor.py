"""Across layers: on the inspection team's untuned fake host, tune fixes what the doctor flags.

The host comes from rtkvm.testing (synthetic topology + untuned kernel files),
the plan from ``rtkvm host plan``, the judgement from ``rtkvm host doctor``;
tune --apply must turn the doctor's tunable failures into passes, and
rollback must bring the tree back byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from rtkvm.cli.main import cli
from rtkvm.testing.kernel_files import TUNED_2NODE, untuned
from rtkvm.tune.fakes import differences, snapshot

FIXED_BY_TUNE = {
    "sched.rt_throttling",
    "kernel.timer_migration",
    "kernel.nmi_watchdog",
    "vm.stat_interval",
    "workqueue.cpumask",
    "irq.affinity",
    "irq.default_affinity",
    "irqbalance.banned",
    "power.governor",
    "power.cstates",
}


def _doctor(root: Path, plan: Path) -> dict[str, str]:
    result = CliRunner().invoke(
        cli, ["host", "doctor", "--root", str(root), "--plan", str(plan), "-f", "json"]
    )
    return {f["id"]: f["status"] for f in json.loads(result.output)["findings"]}


def test_tune_fixes_what_the_doctor_flags_and_rollback_undoes_it(tmp_path: Path) -> None:
    root = tmp_path / "host"
    TUNED_2NODE.write(root)
    untuned(TUNED_2NODE.online).write(root)
    runner = CliRunner()
    planned = runner.invoke(
        cli,
        [
            "host",
            "plan",
            "--root",
            str(root),
            "--rt-cores",
            "4",
            "--dataplane-cores",
            "1",
            "-f",
            "json",
        ],
    )
    assert planned.exit_code == 0, planned.output
    plan = tmp_path / "plan.json"
    plan.write_text(planned.output)
    (root / "run").mkdir(exist_ok=True)
    (root / "var/lib").mkdir(parents=True, exist_ok=True)
    before = snapshot(root)
    doctor_before = _doctor(root, plan)
    assert {k for k in FIXED_BY_TUNE if doctor_before[k] == "fail"} == FIXED_BY_TUNE

    applied = runner.invoke(
        cli, ["host", "tune", "--root", str(root), "--plan", str(plan), "--apply"]
    )
    assert applied.exit_code == 0, applied.output
    doctor_after = _doctor(root, plan)
    assert {k: doctor_after[k] for k in FIXED_BY_TUNE} == dict.fromkeys(FIXED_BY_TUNE, "pass")
    # what tune cannot do without a reboot stays flagged (no boot loader on this tree)
    assert doctor_after["isolation.scheduler"] == "fail"
    assert "add these arguments to your boot loader by hand" in applied.output

    undone = runner.invoke(cli, ["host", "rollback", "--root", str(root)])
    assert undone.exit_code == 0, undone.output
    assert differences(before, snapshot(root)) == []
    assert _doctor(root, plan) == doctor_before
