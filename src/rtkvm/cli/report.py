"""``rtkvm report ...``: turn saved measurements into pictures for people."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rtkvm.errors import InputError
from rtkvm.measure.cyclictest import result_from_dict
from rtkvm.measure.histogram_svg import render_svg


@click.group()
def report() -> None:
    """Render saved measurements (cyclictest histograms) as pictures."""


@report.command("histogram")
@click.argument("result_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="SVG file to write.",
)
@click.option("--title", default=None, help="Title (default: the guest and the accelerator).")
def histogram(result_file: Path, output: Path, title: str | None) -> None:
    """Draw the latency histogram of RESULT_FILE (from `rtkvm guest measure --save`) as SVG."""
    try:
        data = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{result_file}: cannot read a JSON result ({exc})") from None
    latency = data.get("latency", data) if isinstance(data, dict) else data
    result = result_from_dict(latency, source=str(result_file))
    notes: list[str] = []
    accel = data.get("accel") if isinstance(data, dict) else None
    if accel == "tcg":
        notes.append("measured under TCG (emulation): these latencies are meaningless for RT")
    if result.overflowed:
        notes.append("samples overflowed the histogram: the true max is cyclictest's summary")
    guest = data.get("guest", "guest") if isinstance(data, dict) else "guest"
    heading = title or f"cyclictest in {guest}" + (f" ({accel})" if accel else "")
    output.write_text(render_svg(result, title=heading, notes=tuple(notes)), encoding="utf-8")
    click.echo(f"wrote {output}")
