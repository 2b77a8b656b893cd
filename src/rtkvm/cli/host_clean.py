"""``rtkvm host clean``: show, then (with --yes) remove what rtkvm left on this host."""

from __future__ import annotations

import os
from pathlib import Path

import click

from rtkvm.footprint import Footprint
from rtkvm.hostclean import plan_clean, run_clean


@click.command("clean")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also remove rtkvm's state, database, image and caches, restore qemu.conf, delete the "
    "accounts and libvirt directories rtkvm created, and test leftovers under /tmp/rtkvm-*: "
    "the host as before rtkvm (Debian packages stay).",
)
@click.option("--yes", is_flag=True, help="Do it; without --yes the plan is only shown.")
def clean_cmd(everything: bool, yes: bool) -> None:
    """Stop what rtkvm started and undo what it changed on this host.

    In order: rtkvm up stacks, rtkvm's libvirt domains (its guests: destroyed), switches
    (hugepages given back), namespace peers, the host tuning (rolled back), the libvirt
    daemons rtkvm started. Exit 1 when anything could not be removed, with what and why.
    """
    from rtkvm.hostclean_seams import RealCleanSeams

    if yes and os.geteuid() != 0:
        raise click.ClickException("rtkvm host clean --yes must run as root")
    steps = plan_clean(Footprint(Path("/")), RealCleanSeams(), everything=everything)
    if not steps:
        click.echo("nothing to clean: rtkvm left nothing on this host")
        return
    if not yes:
        for step in steps:
            click.echo(f"would {step.what}")
        click.echo("nothing changed: add --yes to do this", err=True)
        return
    result = run_clean(steps)
    for what in result.done:
        click.echo(f"done: {what}")
    for problem in result.problems:
        click.echo(f"failed: {problem}", err=True)
    if result.problems:
        click.echo(
            f"rtkvm host clean: {len(result.problems)} problem(s); fix them and run it again",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"cleaned: {len(result.done)} step(s)")
