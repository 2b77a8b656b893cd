"""``rtkvm host inspect`` and ``rtkvm host capture``: thin CLI wrappers.

``inspect`` prints the HostReport as a table or as JSON (rtkvm.serialize);
``capture DEST`` copies what inspection reads into DEST for replay with
``--root DEST``. No logic beyond choosing what to call and how to print it.
"""

from __future__ import annotations

from pathlib import Path

import click

from rtkvm.cli.common import format_option, open_host, root_option
from rtkvm.host.capture import capture_host
from rtkvm.host.inspect import inspect_host, render_table
from rtkvm.serialize import dumps


@click.command("inspect")
@root_option
@format_option
def inspect_cmd(root: str, fmt: str) -> None:
    """Report CPUs, NUMA, kernel, RT knobs, IRQs, power, cgroups, limits and NICs."""
    report = inspect_host(open_host(root))
    click.echo(dumps(report) if fmt == "json" else render_table(report), nl=fmt == "json")


@click.command("capture")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@root_option
def capture_cmd(dest: Path, root: str) -> None:
    """Copy the files rtkvm reads into DEST (a new directory) for replay with --root DEST."""
    result = capture_host(open_host(root), dest)
    click.echo(
        f"captured {result.files} files ({result.bytes} bytes), {result.directories} "
        f"directories and {result.placeholders} device placeholders into {result.dest}"
    )
    for path, reason in result.skipped:
        click.echo(f"skipped {path}: {reason}")
    click.echo(f"replay with: rtkvm host inspect --root {result.dest}")
