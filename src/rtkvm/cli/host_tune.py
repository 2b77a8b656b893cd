"""``rtkvm host tune | verify | rollback``: the CLI of the tuning engine (thin).

``tune`` shows the diff and changes nothing without ``--apply``; ``verify``
reports ok / drift / pending_reboot / unsupported and exits 1 on drift;
``rollback`` replays the journal in reverse. With ``--root DIR`` everything
happens inside DIR: threads are changed in DIR's fake /proc and commands
(update-grub, restarting irqbalance) are shown, not run. This module must
not contain tuning logic: it parses options and prints what the engine says.
"""

from __future__ import annotations

from pathlib import Path

import click

from rtkvm.cli.common import format_option, root_option
from rtkvm.errors import InputError
from rtkvm.hostfs import HostFS
from rtkvm.tune.engine import Tuning, rollback
from rtkvm.tune.export import export_tuned
from rtkvm.tune.journal import PERSISTENT_DIR, VOLATILE_DIR, Journal
from rtkvm.tune.profile import DEFAULT_PROFILE, available_profiles, load_profile
from rtkvm.tune.render import (
    apply_text,
    changes_json,
    diff_table,
    verify_json,
    verify_table,
    why_lines,
)
from rtkvm.tune.resume import resolve_request
from rtkvm.tune.simkernel import SimulatedHostFS, SimulatedProcessControl
from rtkvm.tune.system import (
    CommandRunner,
    ProcessControl,
    RealProcessControl,
    RecordingRunner,
    SubprocessRunner,
)

journal_option = click.option(
    "--journal-dir",
    default=None,
    help=f"Keep the journal in DIR/volatile and DIR/persistent (a host path) instead of "
    f"{VOLATILE_DIR} and {PERSISTENT_DIR}.",
)
guest_hugepages_option = click.option(
    "--guest-hugepages",
    "guest_hugepages",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Reserve N 2 MiB hugepages for guest memory on each NUMA node of the RT vCPUs "
    "(verify: at least N). Default: not reserved (a site decision).",
)
only_option = click.option(
    "--only",
    multiple=True,
    help="Only settings whose id matches this pattern (repeatable), e.g. 'sysctl:*'.",
)


def _seams(fs: HostFS) -> tuple[ProcessControl, CommandRunner]:
    if fs.is_real_host:
        return RealProcessControl(fs), SubprocessRunner()
    return SimulatedProcessControl(fs), RecordingRunner()


def _host(root: str, *, writable: bool) -> HostFS:
    """The real host, or a tree that answers writes as a kernel does (--root DIR)."""
    fs = HostFS(root, writable=writable)
    if writable and not fs.is_real_host:
        return SimulatedHostFS(root)
    return fs


def _journal(fs: HostFS, journal_dir: str | None) -> Journal:
    if journal_dir is None:
        return Journal(fs)
    base = journal_dir.rstrip("/")
    if not base.startswith("/"):
        raise InputError(f"--journal-dir {journal_dir!r} must be an absolute host path")
    return Journal(fs, f"{base}/volatile", f"{base}/persistent")


def _build(
    root: str,
    plan_path: str | None,
    profile: str | None,
    rt_throttling: str | None,
    guest_hugepages: int | None,
    only: tuple[str, ...],
    journal_dir: str | None,
    *,
    writable: bool,
) -> tuple[Tuning, RecordingRunner | None]:
    fs = _host(root, writable=writable)
    journal = _journal(fs, journal_dir)
    request = resolve_request(
        journal.read_header(),
        plan_path=plan_path,
        profile=profile,
        rt_throttling=rt_throttling,
        guest_hugepages=guest_hugepages,
        only=only,
    )
    proc, runner = _seams(fs)
    tuning = Tuning(
        fs=fs,
        profile=load_profile(request.profile),
        plan=request.plan,
        proc=proc,
        runner=runner,
        journal=journal,
        choices=request.choices,
        only=request.only,
        guest_hugepages=request.guest_hugepages,
    )
    return tuning, runner if isinstance(runner, RecordingRunner) else None


def _show_commands(runner: RecordingRunner | None) -> None:
    if runner is not None:
        for argv in runner.commands:
            click.echo(f"not run (--root is not the real host): {' '.join(argv)}")


@click.command("tune")
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Partition plan JSON (from `rtkvm host plan --format json`).",
)
@click.option(
    "--profile",
    default=DEFAULT_PROFILE,
    show_default=True,
    help=f"Tuning profile: {', '.join(available_profiles())}.",
)
@click.option(
    "--rt-throttling",
    type=click.Choice(["off", "large"]),
    default=None,
    help="off: sched_rt_runtime_us=-1 (no 50 ms/s stall; a runaway RT task can starve "
    "its CPU). large: 999 ms of every second (1 ms/s safety valve). Default: off.",
)
@guest_hugepages_option
@click.option("--apply", "do_apply", is_flag=True, help="Make the changes (default: only show).")
@click.option(
    "--export",
    "export",
    type=(click.Choice(["tuned"]), click.Path(file_okay=False)),
    default=None,
    help="Write the equivalent tuned profile into DIR instead.",
)
@click.option("--why", "show_why", is_flag=True, help="Explain every setting that changes.")
@only_option
@journal_option
@root_option
@format_option
def tune(
    plan_path: str,
    profile: str,
    rt_throttling: str | None,
    guest_hugepages: int | None,
    do_apply: bool,
    export: tuple[str, str] | None,
    show_why: bool,
    only: tuple[str, ...],
    journal_dir: str | None,
    root: str,
    fmt: str,
) -> None:
    """Show (and with --apply make) the changes that tune this host for a partition plan."""
    tuning, runner = _build(
        root,
        plan_path,
        profile,
        rt_throttling,
        guest_hugepages,
        only,
        journal_dir,
        writable=do_apply,
    )
    if export is not None:
        directory = Path(export[1]) / f"rtkvm-{tuning.profile.name}"
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in export_tuned(tuning.context()).items():
            (directory / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote tuned profile {directory} (tuned.conf and its variables file)")
        return
    changes = tuning.changes()
    if fmt == "json":
        click.echo(changes_json(changes))
    else:
        click.echo(diff_table(changes))
        if show_why:
            click.echo("")
            click.echo("\n".join(why_lines(changes)))
    if not do_apply:
        if any(c.needed for c in changes):
            click.echo("\nnothing changed: add --apply to make these changes", err=True)
        return
    result = tuning.apply()
    click.echo(apply_text(result), err=fmt == "json")
    _show_commands(runner)
    if result.written:
        click.echo(
            "undo with: rtkvm host rollback" + (f" --root {root}" if root != "/" else ""),
            err=fmt == "json",
        )
    if result.short:
        raise click.exceptions.Exit(1)  # written, but the host is not as planned


@click.command("verify")
@click.option(
    "--plan",
    "plan_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Partition plan JSON; default: the plan of the last apply (from the journal).",
)
@click.option("--profile", default=None, help="Tuning profile; default: the one last applied.")
@click.option("--rt-throttling", type=click.Choice(["off", "large"]), default=None)
@guest_hugepages_option
@only_option
@journal_option
@root_option
@format_option
def verify(
    plan_path: str | None,
    profile: str | None,
    rt_throttling: str | None,
    guest_hugepages: int | None,
    only: tuple[str, ...],
    journal_dir: str | None,
    root: str,
    fmt: str,
) -> None:
    """Report every setting as ok, drift, pending_reboot or unsupported; exit 1 on drift."""
    tuning, _ = _build(
        root,
        plan_path,
        profile,
        rt_throttling,
        guest_hugepages,
        only,
        journal_dir,
        writable=False,
    )
    checks = tuning.verify()
    click.echo(verify_json(checks) if fmt == "json" else verify_table(checks))
    if any(c.status.value == "drift" for c in checks):
        raise click.exceptions.Exit(1)


@click.command("rollback")
@click.option(
    "--forget",
    "forget",
    type=int,
    multiple=True,
    metavar="ENTRY",
    help="Drop journal entry ENTRY (its number, as a failed rollback names it) without "
    "restoring it: for an entry that can never be restored. Repeatable.",
)
@journal_option
@root_option
def rollback_cmd(forget: tuple[int, ...], journal_dir: str | None, root: str) -> None:
    """Restore every journaled original value, newest first."""
    fs = _host(root, writable=True)
    journal = _journal(fs, journal_dir)
    if not journal.entries() and journal.read_header() is None:
        click.echo("nothing to roll back: the journal is empty")
        return
    unknown = sorted(set(forget) - {e.seq for e in journal.entries()})
    if unknown:
        raise InputError(
            f"--forget {', '.join(map(str, unknown))}: no such journal entry; a failed "
            "rollback names the entries it could not restore"
        )
    proc, runner = _seams(fs)
    result = rollback(fs, journal, proc, runner, forget=frozenset(forget))
    click.echo(f"restored {result.restored} changes")
    for note in result.notes:
        click.echo(f"note: {note}")
    _show_commands(runner if isinstance(runner, RecordingRunner) else None)
    for failure in result.failed:
        click.echo(f"failed: {failure}", err=True)
    if result.failed:
        click.echo(
            "the failed entries stay in the journal; fix the cause and run rollback again", err=True
        )
        raise click.exceptions.Exit(1)
