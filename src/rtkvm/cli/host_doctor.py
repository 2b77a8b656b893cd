"""``rtkvm host doctor``: is this host ready for real-time KVM? A thin CLI wrapper.

Inspects the host (or a tree given with --root), flattens the report into the
facts dict, evaluates the shipped checks (or --checks FILE) against the facts
and the optional --plan, and prints the report as a table or JSON. Exit status:
0 ready, 1 not ready (an error-severity check failed), 2 bad input (a bad plan
or checks file, raised as RtkvmError and turned into exit 2 by cli.main). No
logic beyond choosing what to call and how to print it.
"""

from __future__ import annotations

from pathlib import Path

import click

from rtkvm.cli.common import format_option, open_host, read_text, root_option
from rtkvm.host.checks import CheckSet, parse_checks, shipped_checks
from rtkvm.host.doctor import evaluate
from rtkvm.host.observe import observe
from rtkvm.host.partition import PartitionPlan


@click.command("doctor")
@root_option
@format_option
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Check against this partition plan (the output of rtkvm host plan --format json) "
    "instead of what the host isolates now.",
)
@click.option(
    "--checks",
    "checks_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Use this checks file (TOML, same format as the shipped one) instead.",
)
@click.option("--verbose", "-v", is_flag=True, help="Also say why each failed check matters.")
@click.pass_context
def doctor_cmd(
    ctx: click.Context,
    root: str,
    fmt: str,
    plan_path: Path | None,
    checks_path: Path | None,
    verbose: bool,
) -> None:
    """Check RT readiness: PREEMPT_RT, isolation, IRQs, knobs, power, limits, hugepages, KVM.

    Exit status 0 when ready, 1 when an error-severity check fails, 2 on bad input.
    """
    checks: CheckSet = (
        shipped_checks()
        if checks_path is None
        else parse_checks(read_text(checks_path, "checks file"), source=str(checks_path))
    )
    plan = None
    if plan_path is not None:
        plan = PartitionPlan.load(plan_path)
    _, facts = observe(open_host(root))
    report = evaluate(
        checks, facts, plan, subject=f"host {root}", plan_source=str(plan_path or "plan")
    )
    click.echo(report.to_json() if fmt == "json" else report.render_table(verbose=verbose))
    ctx.exit(report.exit_code())
