"""The agent's view of tuning drift: nothing before rtkvm tuned the host, nothing right
after, the drifted setting once something changed it back."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from rtkvm.cli.main import cli
from rtkvm.hostfs import HostFS
from rtkvm.tune.drift import tuning_drift
from rtkvm.tune.fakes import write_tuning_host

PLAN = {"housekeeping": "0", "rt_vcpu": "1-2", "dataplane": "3",
        "kernel_cmdline": ["isolcpus=managed_irq,domain,1-3", "nohz_full=1-3"]}  # fmt: skip


def test_drift_is_none_untuned_empty_when_applied_and_named_when_reverted(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    write_tuning_host(root)
    assert tuning_drift(HostFS(root)) is None  # rtkvm never tuned it: nothing to drift from
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    done = CliRunner().invoke(cli, ["host", "tune", "--plan", str(plan), "--root", str(root),
                                    "--apply"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert tuning_drift(HostFS(root)) == []
    (root / "sys/kernel/mm/ksm/run").write_text("1\n")  # someone turned KSM back on
    [drift] = tuning_drift(HostFS(root)) or [""]
    assert "ksm" in drift and "1" in drift
