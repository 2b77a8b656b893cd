"""`rtkvm cloud measure ...`: latency proof of servers, run by their host's agent.

``cyclictest SERVER`` measures inside one server, ``rtt CLIENT SERVER`` the
round trip between two (on one host, or on two: the peer's host serves its
half); both queue a measurement through the API
(rtkvm.wire.user_client.CloudClient), then by default wait for it (and for
the serving half across hosts), showing its state changes on stderr, and
print a short table of the result. A result
measured under TCG or on a waived host comes with a loud warning; a
measurement that ends in error exits 1 with its fault. ``list``, ``show``
and ``delete`` manage measurements. This module must not contain logic the
API does not also enforce, nor run measurements itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rtkvm.cli.cloud_conn import api_of
from rtkvm.cli.cloud_format import format_option, plain, plains, show_list, show_one, table
from rtkvm.errors import MeasureTimeoutError
from rtkvm.measure.report import measurement_warnings
from rtkvm.net.rtt import DEFAULT_MPS, DEFAULT_SECONDS
from rtkvm.wire.user_client import CloudClient

LIST_COLUMNS = ("id", "kind", "state", "server_name", "peer_name", "host", "fault")
POLL_SECONDS = 2.0

sleep: Callable[[float], None] = time.sleep
"""How the wait pauses between polls (tests replace it with a fake agent's step)."""


@click.group()
def measure() -> None:
    """Latency measurements of servers: cyclictest in one, round trip between two."""


_wait_options = [
    click.option(
        "--wait/--no-wait",
        default=True,
        show_default=True,
        help="Wait for the result (poll until done or error).",
    ),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        default=900.0,
        show_default=True,
        help="Seconds to wait; the measurement goes on afterwards.",
    ),
    click.option(
        "--save",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write the whole measurement (JSON, with its result) to this file.",
    ),
    format_option,
]


def _with_wait_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_wait_options):
        command = option(command)
    return command


@measure.command("cyclictest")
@click.argument("server")
@click.option("--loops", type=int, default=None, help="Samples per thread (default 3000).")
@click.option("--interval", type=int, default=None, help="Wake-up interval, µs (default 1000).")
@click.option("--buckets", type=int, default=None, help="Histogram size in µs (default 2000).")
@click.option("--priority", type=int, default=None, help="SCHED_FIFO priority (default 90).")
@_with_wait_options
@click.pass_context
def cyclictest_cmd(
    ctx: click.Context,
    server: str,
    loops: int | None,
    interval: int | None,
    buckets: int | None,
    priority: int | None,
    wait: bool,
    timeout: float,
    save: Path | None,
    fmt: str,
) -> None:
    """cyclictest in SERVER (id or name): one thread per RT vCPU, latencies in µs."""
    given = {"loops": loops, "interval_us": interval, "buckets": buckets, "priority": priority}
    body: dict[str, Any] = {"kind": "cyclictest", "server": server}
    params = {k: v for k, v in given.items() if v is not None}
    if params:
        body["cyclictest"] = params
    _run(api_of(ctx), body, wait=wait, timeout=timeout, save=save, fmt=fmt)


@measure.command("rtt")
@click.argument("client")
@click.argument("server")
@click.option("--network", default=None, help="Default: the client's first network.")
@click.option("--seconds", type=int, default=None, help=f"Run time (default {DEFAULT_SECONDS}).")
@click.option("--mps", type=int, default=None, help=f"Messages per second (default {DEFAULT_MPS}).")
@click.option("--bucket-us", type=float, default=None, help="Histogram bucket, µs (default 10).")
@click.option(
    "--client-address",
    default=None,
    help="ADDR/PREFIX of the client's eth0 (probe servers; a tenant's server keeps its own).",
)
@click.option(
    "--server-address",
    default=None,
    help="ADDR/PREFIX of the server's eth0 (probe servers; a tenant's server keeps its own).",
)
@_with_wait_options
@click.pass_context
def rtt_cmd(
    ctx: click.Context,
    client: str,
    server: str,
    network: str | None,
    seconds: int | None,
    mps: int | None,
    bucket_us: float | None,
    client_address: str | None,
    server_address: str | None,
    wait: bool,
    timeout: float,
    save: Path | None,
    fmt: str,
) -> None:
    """Round trip (sockperf ping-pong) from CLIENT to SERVER over their first network.

    Two probe servers are booted afresh into rtkvm's probe for it; two servers on their
    tenants' images keep running: it goes through their guest agents, on their own
    addresses."""
    given = {
        "seconds": seconds,
        "mps": mps,
        "bucket_us": bucket_us,
        "client_address": client_address,
        "server_address": server_address,
    }
    body: dict[str, Any] = {"kind": "rtt", "server": client, "peer": server}
    if network is not None:
        body["network"] = network
    params = {k: v for k, v in given.items() if v is not None}
    if params:
        body["rtt"] = params
    _run(api_of(ctx), body, wait=wait, timeout=timeout, save=save, fmt=fmt)


@measure.command("list")
@click.option("--all-projects", is_flag=True, help="Admins: every project.")
@format_option
@click.pass_context
def list_cmd(ctx: click.Context, all_projects: bool, fmt: str) -> None:
    """Measurements, newest first."""
    show_list(plains(api_of(ctx).measurements(all_projects=all_projects)), LIST_COLUMNS, fmt)


@measure.command("show")
@click.argument("measurement_id")
@format_option
@click.pass_context
def show_cmd(ctx: click.Context, measurement_id: str, fmt: str) -> None:
    """One measurement: -f json gives it whole, a table its fields and a result summary."""
    _show(plain(api_of(ctx).measurement(measurement_id)), fmt)


@measure.command("delete")
@click.argument("ids", nargs=-1, required=True)
@click.pass_context
def delete_cmd(ctx: click.Context, ids: tuple[str, ...]) -> None:
    """Delete measurements (idempotent; not while one runs)."""
    api = api_of(ctx)
    for ident in ids:
        api.delete("measurements", ident)


def _run(
    api: CloudClient,
    body: dict[str, Any],
    *,
    wait: bool,
    timeout: float,
    save: Path | None,
    fmt: str,
) -> None:
    m = plain(api.create_measurement(body))
    click.echo(f"measurement {m['id']}: {m['state']} on host {m['host']}", err=True)
    if wait:
        m = _wait(api, m, timeout)
    if save is not None:
        save.write_text(json.dumps(m, indent=2, sort_keys=True) + "\n", "utf-8")
    _show(m, fmt)
    if m["state"] == "error":
        click.echo(f"measurement {m['id']} failed: {m['fault']}", err=True)
        raise SystemExit(1)


def _wait(api: CloudClient, m: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Poll until done or error (and the serving half of a round trip across hosts has
    ended too), telling each state change on stderr."""
    deadline = time.monotonic() + timeout
    seen = (m["state"], m.get("peer_state"))
    while m["state"] not in ("done", "error") or m.get("peer_state") in _PEER_BUSY:
        if time.monotonic() >= deadline:
            raise MeasureTimeoutError(
                f"measurement {m['id']} is still {m['state']} after {timeout:g} s; it goes on "
                f"on host {m['host']}: follow it with `rtkvm cloud measure show {m['id']}`"
            )
        sleep(POLL_SECONDS)
        m = plain(api.measurement(m["id"]))
        now = (m["state"], m.get("peer_state"))
        if now != seen:
            peer = f" (peer's host {m['peer_host']}: {now[1]})" if now[1] is not None else ""
            click.echo(f"measurement {m['id']}: {now[0]}{peer}", err=True)
            seen = now
    return m


_PEER_BUSY = ("queued", "running", "serving")


def _show(m: dict[str, Any], fmt: str) -> None:
    if fmt != "table":
        show_one(m, fmt)
    else:
        show_one(m, fmt, [k for k in sorted(m) if k not in ("params", "result", "peer_result")])
        click.echo(f"params: {json.dumps(m.get('params') or {}, sort_keys=True)}")
        if m.get("state") == "done" and isinstance(m.get("result"), dict):
            click.echo(summary(m))
    for warning in measurement_warnings(m):
        click.echo(f"WARNING: {warning}", err=True)


def summary(m: dict[str, Any]) -> str:
    """A short table of a done measurement's result."""
    result: dict[str, Any] = m["result"]
    if m["kind"] == "cyclictest":
        latency = result.get("latency") or {}
        threads = latency.get("threads") or []
        rows = [
            [
                str(t.get("thread", "")),
                _num(t.get("min_us")),
                _num(t.get("avg_us")),
                _num(t.get("max_us")),
            ]
            for t in threads
        ]
        worst = max((t.get("max_us") or 0 for t in threads), default=None)
        head = f"cyclictest in {m.get('server_name')} (µs, accel {result.get('accel', '?')}):"
        body = table(["Thread", "Min", "Avg", "Max"], rows)
        return f"{head}\n{body}\noverall max: {_num(worst)} µs"
    pct = result.get("percentiles") or {}
    row = [
        str(result.get("samples", "")),
        _num(result.get("min_us")),
        _num(_percentile(pct, 50.0)),
        _num(_percentile(pct, 99.0)),
        _num(_percentile(pct, 99.9)),
        _num(_percentile(pct, 99.99)),
        _num(result.get("max_us")),
    ]
    where = f"on {m.get('host')}"
    if m.get("peer_host"):
        where = f"from {m.get('host')} to {m.get('peer_host')}"
    head = (
        f"round trip {m.get('server_name')} -> {m.get('peer_name')} over {m.get('network')} "
        f"{where} (µs):"
    )
    cols = ["Samples", "Min", "p50", "p99", "p99.9", "p99.99", "Max"]
    return head + "\n" + table(cols, [row])


def _percentile(percentiles: dict[str, Any], pct: float) -> Any:
    for key, value in percentiles.items():
        try:
            if float(key) == pct:
                return value
        except ValueError:
            continue
    return None


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
