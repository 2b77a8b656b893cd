"""Output of `rtkvm cloud` commands in the manner of the openstack client.

Lists print as one table with a row per item and chosen columns; single
objects as a Field | Value table (times, the ``*_at`` fields, in ISO 8601 UTC);
``-f json`` prints the API's JSON as is,
``-f value`` the bare values (one item per line, for shell scripts). RT
waivers are shown loudly: a waived host as ``WAIVED: <reason>``, a server
placed under a waiver as ``not assured (host waiver: <reason>)``. This
module only formats: it must not call the API.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import BaseModel

FORMATS = ("table", "json", "value")

format_option = click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people, json or value for scripts.",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "name" in v for v in value):
            return ", ".join(
                f"{v['name']} ({v['address']})" if v.get("address") else str(v["name"])
                for v in value
            )
        if value and all(isinstance(v, list) for v in value):
            return ", ".join(":".join(str(x) for x in v) for v in value)
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def time_cell(value: Any) -> str:
    """An API time (seconds since the epoch) as ISO 8601 UTC to the second, for people."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            moment = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return str(value)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return _cell(value)


def _table_cell(key: str, value: Any) -> str:
    """A table cell: times (``*_at`` fields) in ISO 8601 UTC; JSON and value keep numbers."""
    return time_cell(value) if key.endswith("_at") else _cell(value)


def waiver_cell(host: dict[str, Any]) -> str:
    """``WAIVED: <reason>`` for a host with an RT waiver, else empty."""
    reason = host.get("rt_waiver")
    return f"WAIVED: {reason}" if reason else ""


def disk_cell(host: dict[str, Any]) -> str:
    """GiB promised to its servers' disks of what its agent reported ("used/total")."""
    total = host.get("disk_gb_total")
    return f"{host.get('disk_gb_used', 0)}/{'not reported' if total is None else total}"


def qualified_cell(host: dict[str, Any]) -> str:
    """The host's qualification at a glance: ``yes (worst N µs, DATE)``, ``no (last
    failed)``, ``stale`` (passed for another plan or wiring), ``running`` or ``never``;
    ``emulated`` when its figures came from TCG."""
    q = host.get("qualification")
    if not q:
        return "never"
    worst = "" if q.get("worst_us") is None else f"worst {q['worst_us']:g} µs, "
    emulated = ", emulated" if q.get("emulated") else ""
    when = time_cell(q["finished_at"]) if q.get("finished_at") else ""
    if host.get("qualified"):
        return f"yes ({worst}{when}{emulated})"
    if q["state"] == "passed":
        return f"stale ({worst}{when}: the plan or wiring changed since)"
    return f"no (last {q['state']}{', ' + when if when else ''})"


def rt_cell(server: dict[str, Any]) -> str:
    """The server's RT state at a glance: ``verified``, ``degraded: <first reason>``,
    ``unverified``; ``not assured (host waiver: <reason>)`` for one placed under a waiver."""
    reason = server.get("rt_waiver")
    if reason:
        return f"not assured (host waiver: {reason})"
    state = str(server.get("rt_state") or "unverified")
    reasons = server.get("rt_reasons") or []
    if state == "degraded" and reasons:
        first = str(reasons[0])
        return f"degraded: {first[:60]}" + ("..." if len(first) > 60 else "")
    return state


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A bordered table: +----+ lines, | cells |, as the openstack client draws."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line, fmt(headers), line, *(fmt(r) for r in rows), line]
    return "\n".join(out)


def plain(model: BaseModel) -> dict[str, Any]:
    """An API answer as the JSON it came as, for the tables and formats below."""
    return model.model_dump(mode="json")


def plains(models: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [plain(m) for m in models]


def show_list(items: list[dict[str, Any]], columns: Sequence[str], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(items, indent=2, sort_keys=True))
        return
    if fmt == "value":
        for item in items:
            click.echo(" ".join(_cell(item.get(c)) for c in columns))
        return
    rows = [[_table_cell(c, item.get(c)) for c in columns] for item in items]
    headers = [
        c.replace("_", " ").title().replace("Id", "ID").replace("Rt ", "RT ") for c in columns
    ]
    click.echo(table(headers, rows))


def show_one(item: dict[str, Any], fmt: str, fields: Sequence[str] | None = None) -> None:
    if fmt == "json":
        click.echo(json.dumps(item, indent=2, sort_keys=True))
        return
    keys = list(fields) if fields is not None else sorted(item)
    if fmt == "value":
        for key in keys:
            click.echo(_cell(item.get(key)))
        return
    click.echo(table(["Field", "Value"], [[k, _table_cell(k, item.get(k))] for k in keys]))
