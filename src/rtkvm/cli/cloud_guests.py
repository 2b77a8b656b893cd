"""``rtkvm cloud guest list | show | measurements``: guests Nova built, as rtkvm's API keeps them.

In OpenStack mode rtkvm's node agents report each guest's RT verdict
(``verified``, or ``degraded`` with why) and the measurements they ran; an
admin reads them here. ``measurements -f json`` prints what ``rtkvm report
build`` reads beside rtkvm's own measurements. Thin: no decision here.
"""

from __future__ import annotations

import click

from rtkvm.cli.cloud_conn import api_of
from rtkvm.cli.cloud_format import format_option, plain, plains, show_list, show_one
from rtkvm.measure.report import measurement_warnings

VERDICT_COLUMNS = ("host", "name", "server_id", "flavor", "verdict", "stale", "summary")
MEASUREMENT_COLUMNS = ("id", "server_name", "host", "kind", "max_us", "emulated", "measured_at")


def _max_us(result: dict[str, object]) -> object:
    latency = result.get("latency")
    threads = latency.get("threads") if isinstance(latency, dict) else None
    if not isinstance(threads, list) or not threads:
        return ""
    return max(int(t.get("max_us", 0)) for t in threads if isinstance(t, dict))


@click.group("guest")
def guest() -> None:
    """Guests another engine (Nova) built: their RT verdicts and measurements (admins)."""


@guest.command("list")
@click.option("--host", default=None, help="Only this host's guests.")
@click.option("--verdict", type=click.Choice(["verified", "degraded", "not-rt"]), default=None)
@format_option
@click.pass_context
def guest_list(ctx: click.Context, host: str | None, verdict: str | None, fmt: str) -> None:
    """The verdicts the OpenStack-mode agents last reported; exit 1 if one is degraded."""
    items = plains(api_of(ctx).guest_verdicts(host=host, verdict=verdict))
    show_list(items, VERDICT_COLUMNS, fmt)
    for item in items:
        if item["stale"]:
            click.echo(
                f"WARNING: {item['name']} ({item['server_id']}): host {item['host']}'s agent "
                "has not reported lately; this verdict may be old",
                err=True,
            )
    if any(i["verdict"] == "degraded" for i in items):
        raise click.exceptions.Exit(1)


@guest.command("show")
@click.argument("server_id")
@format_option
@click.pass_context
def guest_show(ctx: click.Context, server_id: str, fmt: str) -> None:
    """One guest: its verdict with every reason, and its measurements."""
    detail = api_of(ctx).guest(server_id)
    if fmt == "json":
        show_one(plain(detail), fmt)
        return
    v = detail.verdict
    if v is None:
        click.echo(f"{server_id}: no agent reports this guest now")
    else:
        click.echo(f"{v.name} ({v.server_id}) on {v.host}, domain {v.domain}, flavor {v.flavor}")
        click.echo(f"  {v.verdict}: {v.policy}/{v.priority} on vCPU {v.rt_vcpus or '-'}")
        for reason in v.reasons:
            click.echo(f"  - {reason}")
        for rule, quirk in sorted(v.waived.items()):
            click.echo(f"  waived by the host: {rule} ({quirk})")
        if v.stale:
            click.echo("  WARNING: the host's agent has not reported lately", err=True)
    for m in detail.measurements:
        click.echo(f"  measurement {m.id}: {m.kind}, max {_max_us(m.result)} us")
        for warning in measurement_warnings(plain(m)):
            click.echo(f"    WARNING: {warning}", err=True)
    if v is not None and v.verdict == "degraded":
        raise click.exceptions.Exit(1)


@guest.command("measurements")
@click.option("--server", "server_id", default=None, help="Only this guest's (its id).")
@format_option
@click.pass_context
def guest_measurements(ctx: click.Context, server_id: str | None, fmt: str) -> None:
    """Measurements the agents ran in such guests, newest first."""
    items = plains(api_of(ctx).guest_measurements(server_id))
    if fmt == "json":
        show_list(items, MEASUREMENT_COLUMNS, fmt)
        return
    for item in items:
        item["max_us"] = _max_us(item["result"])
    show_list(items, MEASUREMENT_COLUMNS, fmt)
