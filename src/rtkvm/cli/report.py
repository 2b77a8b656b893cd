"""``rtkvm report ...``: turn saved measurements into reports and pictures for people.

This module reads the files and writes the outputs; what goes in a report is
decided in rtkvm.measure.report. It must not measure anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from rtkvm.errors import InputError
from rtkvm.measure import report as measure_report
from rtkvm.measure.cyclictest import result_from_dict
from rtkvm.measure.histogram_svg import render_svg
from rtkvm.measure.report import TCG_WARNING
from rtkvm.wire.qualify import QualificationOut


@click.group()
def report() -> None:
    """Render saved measurements as reports (tables, warnings) and pictures."""


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
        notes.append(TCG_WARNING)
    if result.overflowed:
        notes.append("samples overflowed the histogram: the true max is cyclictest's summary")
    guest = data.get("guest", "guest") if isinstance(data, dict) else "guest"
    heading = title or f"cyclictest in {guest}" + (f" ({accel})" if accel else "")
    output.write_text(render_svg(result, title=heading, notes=tuple(notes)), encoding="utf-8")
    click.echo(f"wrote {output}")


@report.command("build")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write report.txt, report.md, report.html (standalone), report.json "
    "and the SVG pictures to.",
)
@click.option("--title", default="rtkvm latency report", show_default=True)
@click.option(
    "--doctor",
    "doctor_file",
    type=click.Path(path_type=Path),
    default=None,
    help="The output of `rtkvm host doctor -f json`: its verdict heads the report.",
)
@click.option("--note", "notes", multiple=True, help="A line for the report header (repeatable).")
@click.option(
    "--qualification",
    "qualification_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A host's qualification (`rtkvm cloud host qualify --save FILE`): its verdict heads "
    "the report (repeatable).",
)
def build(
    files: tuple[Path, ...],
    out_dir: Path,
    title: str,
    doctor_file: Path | None,
    notes: tuple[str, ...],
    qualification_files: tuple[Path, ...],
) -> None:
    """One report of FILE...: tables, warnings and a histogram picture per measurement.

    Each FILE is the output of `rtkvm cloud measure show ID -f json` (or a list of
    them), `rtkvm guest measure --save FILE` or `rtkvm net rtt -f json`.
    """
    entries = [e for f in files for e in measure_report.load(_read_json(f), str(f))]
    doctor = (
        None
        if doctor_file is None
        else measure_report.doctor_from_dict(_read_json(doctor_file), source=str(doctor_file))
    )
    proofs = tuple(_host_proof(_read_json(f), f) for f in qualification_files)
    built = measure_report.Report(
        title, tuple(entries), doctor=doctor, notes=notes, qualifications=proofs
    )
    text = measure_report.render_text(built)
    pictures = measure_report.render_pictures(built)
    outputs = {
        "report.txt": text,
        "report.md": measure_report.render_markdown(built),
        "report.html": measure_report.render_html(built),
        "report.json": json.dumps(measure_report.summarise(built), indent=2) + "\n",
        **pictures,
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, content in outputs.items():
            (out_dir / name).write_text(content, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot write the report to {out_dir}: {exc}; choose another -o"
        ) from None
    click.echo(text, nl=False)
    click.echo(
        f"\nreport: {out_dir / 'report.txt'}, {out_dir / 'report.md'}, "
        f"{out_dir / 'report.html'}, {out_dir / 'report.json'}; "
        + (
            f"pictures: {', '.join(str(out_dir / p) for p in pictures)}"
            if pictures
            else "no pictures"
        )
    )


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(
            f"{path}: not JSON ({exc}); give the output of a `-f json` command or a --save file"
        ) from None


def _host_proof(data: Any, source: Path) -> measure_report.HostProof:
    try:
        q = QualificationOut.model_validate(data)
    except ValidationError as exc:
        raise InputError(
            f"{source}: not a host qualification (`rtkvm cloud host qualify --save FILE`): "
            f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']}"
        ) from None
    proof = q.proof
    return measure_report.HostProof(
        host=q.host,
        state=q.state,
        finished_at=q.finished_at,
        free_pcpus=q.free_pcpus,
        worst_us=proof.worst_us if proof else None,
        emulated=proof.emulated if proof else False,
        networks=tuple((n.network, n.p99_99_us, n.max_us) for n in proof.networks) if proof else (),
        fault=q.fault,
    )
