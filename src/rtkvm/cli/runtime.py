"""``rtkvm runtime ...``: bring libvirtd/QEMU up for RT guests and show the quirks."""

from __future__ import annotations

from pathlib import Path

import click

from rtkvm.cli.common import format_option
from rtkvm.findings import Report
from rtkvm.hostfs import HostFS
from rtkvm.runtime import kvmprobe
from rtkvm.runtime.facts import DEFAULT_PROBE_CACHE
from rtkvm.runtime.libvirtd import runtime_findings, runtime_up
from rtkvm.runtime.quirks import Quirk, detect_all, quirks_report


def _detect(fs: HostFS, probe_cache: Path) -> list[Quirk]:
    cached = kvmprobe.cached_result(probe_cache)
    booted = cached.booted if cached else None
    detail = cached.detail if cached else "KVM boot probe not run yet (rtkvm guest create runs it)"
    accel = "kvm" if booted else "tcg"
    return detect_all(fs, accel=accel, probe_booted=booted, probe_detail=detail)


probe_cache_option = click.option(
    "--probe-cache",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_PROBE_CACHE,
    show_default=True,
    help="Where the KVM boot probe's result is cached.",
)


@click.group()
def runtime() -> None:
    """The libvirt/QEMU runtime: start it, show what this machine can do."""


@runtime.command("up")
@probe_cache_option
def up(probe_cache: Path) -> None:
    """Create users/dirs, write qemu.conf, start virtlogd and libvirtd (idempotent)."""
    fs = HostFS("/", writable=True)
    quirks = _detect(fs, probe_cache)
    result = runtime_up(fs, {q.id for q in quirks if q.present})
    for action in result.actions:
        click.echo(f"runtime: {action}")
    for q in quirks:
        if q.present:
            click.echo(f"runtime: warning: {q.warning}", err=True)
    for warning in result.warnings:
        click.echo(f"runtime: warning: {warning}", err=True)
    click.echo("runtime: libvirtd is up (qemu:///system)")


@runtime.command("status")
@probe_cache_option
@format_option
def status(probe_cache: Path, fmt: str) -> None:
    """Daemons, qemu.conf, and the quirks of this machine with how rtkvm handles them."""
    fs = HostFS("/")
    quirks = _detect(fs, probe_cache)
    state = runtime_findings(fs, {q.id for q in quirks if q.present})
    report = quirks_report("runtime on this host", quirks)
    report = Report(report.subject, (*state, *report.findings), "usable", "not usable")
    click.echo(report.to_json() if fmt == "json" else report.render_table(verbose=True))
    raise SystemExit(report.exit_code())
