"""One latency report from saved measurements: tables, warnings, pictures, a JSON summary.

Input is measurement documents already loaded from JSON, in any of three
shapes: a measurement of the control plane (``rtkvm cloud measure show ID -f
json``: a MeasurementOut with ``kind``), a cyclictest result (``rtkvm guest
measure --save``) or a round trip (``rtkvm net rtt -f json``). Each becomes an
entry; :func:`summarise` computes the figures of the tables once (with, for
each figure that cannot be computed, the reason instead of a number), and the
text, Markdown and JSON outputs render that summary. Warnings (emulation,
waived hosts, histogram overflow, sockperf's own warnings, a guest kernel
that is not real-time, a failed verify, failed or unfinished measurements)
come first in every output. This module is pure: it must not read or write
files, run anything, or talk to the control plane (see cli/report.py).
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rtkvm.errors import InputError
from rtkvm.measure.cyclictest import CyclictestResult, percentile, result_from_dict
from rtkvm.measure.histogram_svg import ACCEPTANCE_US, render_svg
from rtkvm.measure.rtt_svg import render_rtt_svg
from rtkvm.net.rtt import RttReport, report_from_dict, resolvable, samples_needed

CYCLICTEST_PERCENTILES = (99.0, 99.9)
RTT_PERCENTILES = (50.0, 99.0, 99.9)
EXPECTED = (
    "a measurement (`rtkvm cloud measure show ID -f json`), a cyclictest result "
    "(`rtkvm guest measure --save FILE`), a Nova guest's measurement "
    "(`rtkvm cloud guest measurements -f json`) or a round trip (`rtkvm net rtt -f json`)"
)
TCG_WARNING = "measured under TCG (emulation): these latencies are meaningless for real time"


@dataclass(frozen=True)
class CyclictestEntry:
    """cyclictest in one guest: the result, or why there is none."""

    source: str
    instance: str
    state: str
    measurement_id: str | None = None
    host: str | None = None
    accel: str | None = None
    guest_realtime: bool | None = None
    args: str | None = None
    result: CyclictestResult | None = None
    verify: Mapping[str, Any] | None = None
    fault: str | None = None
    rt_waiver: str | None = None
    loops: int | None = None


@dataclass(frozen=True)
class RttEntry:
    """A round trip between two endpoints: the report, or why there is none."""

    source: str
    path: str
    state: str
    measurement_id: str | None = None
    host: str | None = None
    network: str | None = None
    report: RttReport | None = None
    fault: str | None = None
    rt_waiver: str | None = None


Entry = CyclictestEntry | RttEntry


@dataclass(frozen=True)
class DoctorVerdict:
    """The header line of a host doctor report: its verdict and the checks that failed."""

    subject: str
    verdict: str
    ok: bool
    failed: tuple[str, ...]
    """One line per failed or unknown check: ``[fail] error id: message``."""


@dataclass(frozen=True)
class HostProof:
    """A host's qualification (``rtkvm cloud host qualify --save``), as the report heads it."""

    host: str
    state: str
    finished_at: float | None
    free_pcpus: str
    worst_us: float | None
    emulated: bool
    networks: tuple[tuple[str, float | None, float | None], ...]
    """(network, p99.99 µs, max µs) of each network's round trip."""
    fault: str | None = None


@dataclass(frozen=True)
class Report:
    title: str
    entries: tuple[Entry, ...]
    doctor: DoctorVerdict | None = None
    notes: tuple[str, ...] = ()
    qualifications: tuple[HostProof, ...] = ()


# -- loading -------------------------------------------------------------------------


def load(data: Any, source: str) -> list[Entry]:
    """The entries of one loaded document (a list of measurements gives several)."""
    if isinstance(data, list):
        return [e for i, item in enumerate(data) for e in load(item, f"{source}[{i}]")]
    if not isinstance(data, dict):
        raise InputError(
            f"{source}: not a measurement: expected {EXPECTED}, found JSON {data!r:.40}"
        )
    if "kind" in data and "state" in data:
        return [_from_measurement(data, source)]
    if "measured_at" in data and isinstance(data.get("result"), dict):  # a Nova guest's (API)
        name = f"nova:{data.get('server_name') or data.get('server_id')}"
        entry = _from_saved_cyclictest(data["result"], source, instance=name)
        return [replace(entry, measurement_id=_opt(data.get("id")), host=_opt(data.get("host")))]
    if "latency" in data:
        return [_from_saved_cyclictest(data, source, instance=str(data.get("guest", source)))]
    if {"buckets", "threads", "histogram"} <= data.keys():
        result = result_from_dict(data, source=source)
        return [CyclictestEntry(source, _stem(source), "done", result=result)]
    if {"path", "samples", "histogram"} <= data.keys():
        report = report_from_dict(data, source=source)
        return [RttEntry(source, report.path, "done", report=report)]
    keys = ", ".join(sorted(data)[:8]) or "none"
    raise InputError(f"{source}: not a measurement: expected {EXPECTED}; found keys {keys}")


def doctor_from_dict(data: Any, *, source: str = "doctor") -> DoctorVerdict:
    """The verdict of ``rtkvm host doctor -f json`` output; InputError when it is not one."""
    try:
        failed = tuple(
            f"[{f['status']}] {f['severity']} {f['id']}: {f['message']}"
            for f in data["findings"]
            if f["status"] in ("fail", "unknown")
        )
        blocking = any(
            f["severity"] == "error" and f["status"] in ("fail", "unknown")
            for f in data["findings"]
        )
        return DoctorVerdict(str(data["subject"]), str(data["verdict"]), not blocking, failed)
    except (KeyError, TypeError) as exc:
        raise InputError(
            f"{source}: not the output of `rtkvm host doctor -f json` (missing {exc})"
        ) from None


def _from_measurement(data: Mapping[str, Any], source: str) -> Entry:
    kind, state = data["kind"], str(data["state"])
    result = data.get("result")
    name = str(data.get("server_name") or data.get("server") or "?")
    host = _opt(data.get("host"))
    if host is not None and data.get("peer_host"):  # a round trip across hosts
        host = f"{host} -> {data['peer_host']}"
    common: dict[str, Any] = {
        "measurement_id": _opt(data.get("id")),
        "host": host,
        "fault": _opt(data.get("fault")),
        "rt_waiver": _opt(data.get("rt_waiver")),
    }
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    if kind == "cyclictest":
        if state != "done" or result is None:
            return CyclictestEntry(source, name, state, **common)
        entry = _from_saved_cyclictest(result, f"{source} (result)", instance=name)
        loops = params.get("loops") if params else None
        return dataclasses.replace(
            entry, state=state, loops=loops if isinstance(loops, int) else None, **common
        )
    if kind == "rtt":
        path = f"{name} -> {data.get('peer_name') or data.get('peer') or '?'}"
        network = _opt(data.get("network"))
        if state != "done" or result is None:
            return RttEntry(source, path, state, network=network, **common)
        report = report_from_dict(result, source=f"{source} (result)")
        return RttEntry(source, path, state, network=network, report=report, **common)
    raise InputError(f"{source}: measurement kind {kind!r} is neither 'cyclictest' nor 'rtt'")


def _from_saved_cyclictest(data: Any, source: str, *, instance: str) -> CyclictestEntry:
    if not isinstance(data, dict):
        raise InputError(f"{source}: not a cyclictest result saved by rtkvm guest measure --save")
    realtime = data.get("guest_realtime")
    verify = data.get("verify")
    return CyclictestEntry(
        source,
        instance,
        "done",
        accel=_opt(data.get("accel")),
        guest_realtime=realtime if isinstance(realtime, bool) else None,
        args=_opt(data.get("cyclictest")),
        result=result_from_dict(data["latency"], source=source),
        verify=verify if isinstance(verify, dict) else None,
    )


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _stem(source: str) -> str:
    name = source.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


# -- figures and warnings ------------------------------------------------------------


def entry_warnings(entry: Entry) -> list[str]:
    """What makes the figures of ``entry`` untrustworthy or absent, each said in full."""
    name = entry.instance if isinstance(entry, CyclictestEntry) else entry.path
    out: list[str] = []
    if entry.state == "error":
        ident = f" {entry.measurement_id}" if entry.measurement_id else ""
        out.append(f"{name}: measurement{ident} failed: {entry.fault or 'no fault given'}")
    elif entry.state != "done":
        out.append(f"{name}: measurement is {entry.state}: no result yet; report again later")
    if entry.rt_waiver:
        host = entry.host or "of this instance"
        out.append(
            f"{name}: host {host} was waived by an admin: {entry.rt_waiver}; nothing is assured"
        )
    if isinstance(entry, CyclictestEntry):
        out += _cyclictest_warnings(entry)
    elif entry.report is not None:
        out += [f"{name}: sockperf: {w}" for w in entry.report.warnings]
    return out


def _cyclictest_warnings(entry: CyclictestEntry) -> list[str]:
    name, out = entry.instance, []
    if entry.accel == "tcg":
        out.append(f"{name}: {TCG_WARNING}")
    if entry.guest_realtime is False:
        out.append(
            f"{name}: the guest kernel is not real-time (guest_realtime false): "
            "these are not PREEMPT_RT latencies"
        )
    if entry.verify is not None:
        failed = [
            str(f.get("id"))
            for f in entry.verify.get("findings", ())
            if isinstance(f, dict)
            and f.get("severity") == "error"
            and f.get("status") in ("fail", "unknown")
        ]
        if failed:
            verdict = entry.verify.get("verdict", "failed")
            out.append(
                f"{name}: the in-guest verify says {verdict} (failed: {', '.join(failed)}): "
                "cyclictest did not run as an RT workload should"
            )
    result = entry.result
    if result is not None:
        if result.overflowed:
            over = sum(t.overflows for t in result.threads)
            out.append(
                f"{name}: {over} samples overflowed the {result.buckets} µs histogram: "
                "percentiles withheld, the max is cyclictest's own; measure with more buckets"
            )
        worst = max((t.max_us for t in result.threads), default=0)
        if worst > ACCEPTANCE_US:
            out.append(f"{name}: max {worst} µs is above the {ACCEPTANCE_US} µs target")
    return out


def _label(p: float) -> str:
    return f"p{p:g}"


def _cyclictest_figures(result: CyclictestResult) -> dict[str, Any]:
    samples = sum(t.samples for t in result.threads)
    merged = tuple(sum(column) for column in zip(*result.histogram, strict=True))
    in_hist = sum(merged)
    pcts: dict[str, int | None] = {}
    why: dict[str, str] = {}
    for p in CYCLICTEST_PERCENTILES:
        label, value = _label(p), None
        if result.overflowed:
            why[label] = (
                f"withheld: samples overflowed the {result.buckets} µs histogram, "
                "the buckets cannot place the tail"
            )
        elif in_hist == 0:
            why[label] = "no samples in the histogram"
        elif not resolvable(p, in_hist):
            why[label] = f"unresolved at {in_hist} samples (needs at least {samples_needed(p)})"
        else:
            value = percentile(merged, p)
        pcts[label] = value
    avg = sum(t.avg_us * t.samples for t in result.threads) / samples if samples else None
    return {
        "threads": len(result.threads),
        "samples": samples,
        "min_us": min((t.min_us for t in result.threads), default=None),
        "avg_us": None if avg is None else round(avg, 1),
        "max_us": max((t.max_us for t in result.threads), default=None),
        "percentiles_us": pcts,
        "unavailable": why,
        "overflowed": result.overflowed,
        "buckets": result.buckets,
        "per_thread": [
            {
                "thread": t.thread,
                "samples": t.samples,
                "min_us": t.min_us,
                "avg_us": t.avg_us,
                "max_us": t.max_us,
                "overflows": t.overflows,
                "percentiles_us": t.percentiles,
            }
            for t in result.threads
        ],
    }


def _rtt_figures(report: RttReport) -> dict[str, Any]:
    pcts: dict[str, float | None] = {}
    why: dict[str, str] = {}
    for p in RTT_PERCENTILES:
        label = _label(p)
        if p in report.unresolved or not resolvable(p, report.samples):
            why[label] = (
                f"unresolved at {report.samples} samples (needs at least {samples_needed(p)})"
            )
            pcts[label] = None
        elif p not in report.percentiles:
            why[label] = "not in the saved report"
            pcts[label] = None
        else:
            pcts[label] = round(report.percentiles[p], 1)
    return {
        "samples": report.samples,
        "min_us": round(report.min_us, 1),
        "avg_us": round(report.avg_us, 1),
        "max_us": round(report.max_us, 1),
        "percentiles_us": pcts,
        "unavailable": why,
        "bucket_us": report.histogram.bucket_us,
        "tool": report.tool,
    }


def picture_names(report: Report) -> dict[int, str]:
    """File name of the picture of each entry that has a result, by entry index."""
    names: dict[int, str] = {}
    used: set[str] = set()
    for i, entry in enumerate(report.entries):
        if isinstance(entry, CyclictestEntry):
            if entry.result is None:
                continue
            base = f"cyclictest-{_slug(entry.instance)}"
        else:
            if entry.report is None:
                continue
            base = f"rtt-{_slug(entry.path)}"
        name, n = f"{base}.svg", 2
        while name in used:
            name, n = f"{base}-{n}.svg", n + 1
        used.add(name)
        names[i] = name
    return names


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-.") or "x"


def summarise(report: Report) -> dict[str, Any]:
    """The figures of the tables, the warnings and the picture names, as JSON-ready data."""
    names = picture_names(report)
    cyclictest: list[dict[str, Any]] = []
    rtt: list[dict[str, Any]] = []
    warnings = _doctor_warnings(report.doctor)
    for i, entry in enumerate(report.entries):
        found = entry_warnings(entry)
        warnings += found
        common: dict[str, Any] = {
            "source": entry.source,
            "id": entry.measurement_id,
            "state": entry.state,
            "host": entry.host,
            "fault": entry.fault,
            "rt_waiver": entry.rt_waiver,
            "warnings": found,
            "picture": names.get(i),
        }
        if isinstance(entry, CyclictestEntry):
            row: dict[str, Any] = {"instance": entry.instance, **common}
            row |= {
                "accel": entry.accel,
                "guest_realtime": entry.guest_realtime,
                "cyclictest": entry.args,
                "loops": entry.loops,
                "verify": None if entry.verify is None else entry.verify.get("verdict"),
            }
            row["figures"] = None if entry.result is None else _cyclictest_figures(entry.result)
            cyclictest.append(row)
        else:
            row = {"path": entry.path, "network": entry.network, **common}
            row["figures"] = None if entry.report is None else _rtt_figures(entry.report)
            rtt.append(row)
    doctor = report.doctor
    for q in report.qualifications:
        if q.emulated:
            warnings.append(f"host qualification of {q.host}: {TCG_WARNING}")
    return {
        "title": report.title,
        "doctor": None if doctor is None else doctor.__dict__ | {"failed": list(doctor.failed)},
        "qualifications": [dataclasses.asdict(q) for q in report.qualifications],
        "notes": list(report.notes),
        "warnings": warnings,
        "cyclictest": cyclictest,
        "rtt": rtt,
    }


def _doctor_warnings(doctor: DoctorVerdict | None) -> list[str]:
    if doctor is None or doctor.ok:
        return []
    return [
        f"host doctor: {doctor.subject} is {doctor.verdict}: "
        "the figures do not show what an RT-ready host does"
    ]


# -- rendering -----------------------------------------------------------------------


def _cell(value: Any, fmt: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, fmt)


class _Footnotes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, text: str) -> str:
        self.lines.append(text)
        return f"n/a[{len(self.lines)}]"


@dataclass(frozen=True)
class _Table:
    heading: str
    header: list[str]
    rows: list[list[str]]
    footnotes: list[str]
    """Why a figure is missing: footnote k is the cell ``n/a[k]``."""
    faults: list[str]
    """Measurements without a result and why."""


def _tables(summary: Mapping[str, Any]) -> list[_Table]:
    tables = []
    notes = _Footnotes()
    extra: list[str] = []
    header = ["INSTANCE", "HOST", "ACCEL", "RT GUEST", "STATE", "THREADS", "SAMPLES"]
    header += ["MIN", "AVG", "MAX"] + [_label(p).upper() for p in CYCLICTEST_PERCENTILES]
    header += ["OVERFLOW"]
    rows = []
    for m in summary["cyclictest"]:
        row = [m["instance"], _cell(m["host"]), _cell(m["accel"])]
        row += [_cell(m["guest_realtime"]), m["state"]]
        f = m["figures"]
        if f is None:
            row += ["-"] * (len(header) - len(row))
            extra.append(f"{m['instance']}: {m['state']}: {m['fault'] or 'no result'}")
        else:
            row += [str(f["threads"]), str(f["samples"]), _cell(f["min_us"])]
            row += [_cell(f["avg_us"], ".1f"), _cell(f["max_us"])]
            for label, value in f["percentiles_us"].items():
                if value is None:
                    row.append(notes.add(f"{m['instance']} {label}: {f['unavailable'][label]}"))
                else:
                    row.append(str(value))
            row.append("OVERFLOW" if f["overflowed"] else "no")
        rows.append(row)
    if rows:
        tables.append(_Table("cyclictest in the guests (µs)", header, rows, notes.lines, extra))
    notes, extra = _Footnotes(), []
    header = ["PATH", "NETWORK", "HOST", "STATE", "SAMPLES", "MIN"]
    header += [_label(p).upper() for p in RTT_PERCENTILES] + ["MAX"]
    rows = []
    for m in summary["rtt"]:
        row = [m["path"], _cell(m["network"]), _cell(m["host"]), m["state"]]
        f = m["figures"]
        if f is None:
            row += ["-"] * (len(header) - len(row))
            extra.append(f"{m['path']}: {m['state']}: {m['fault'] or 'no result'}")
        else:
            row += [str(f["samples"]), _cell(f["min_us"], ".1f")]
            for label, value in f["percentiles_us"].items():
                if value is None:
                    row.append(notes.add(f"{m['path']} {label}: {f['unavailable'][label]}"))
                else:
                    row.append(_cell(value, ".1f"))
            row.append(_cell(f["max_us"], ".1f"))
        rows.append(row)
    if rows:
        tables.append(_Table("round trip between guests (µs)", header, rows, notes.lines, extra))
    return tables


def _fixed(header: Sequence[str], rows: Sequence[Sequence[str]]) -> Iterable[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        yield "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()


def render_text(report: Report) -> str:
    """The report for a terminal: header, warnings first, then fixed-width tables."""
    summary = summarise(report)
    lines = [report.title, "=" * len(report.title)]
    lines += _header_lines(summary)
    lines.append("")
    warnings = summary["warnings"]
    if warnings:
        lines.append(f"!!! {len(warnings)} WARNING(S): read these before the figures")
        lines += [f"!!! {w}" for w in warnings]
    else:
        lines.append("no warnings")
    for table in _tables(summary):
        lines += ["", table.heading, ""]
        lines += _fixed(table.header, table.rows)
        lines += [f"  [{i}] {n}" for i, n in enumerate(table.footnotes, 1)]
        lines += [f"  {n}" for n in table.faults]
    if not report.entries:
        lines += ["", "no measurements"]
    return "\n".join(lines) + "\n"


def _header_lines(summary: Mapping[str, Any]) -> list[str]:
    lines = []
    doctor = summary["doctor"]
    if doctor is not None:
        lines.append(f"host doctor: {doctor['subject']}: {doctor['verdict']}")
        lines += [f"  {f}" for f in doctor["failed"]]
    for q in summary.get("qualifications", []):
        worst = "-" if q["worst_us"] is None else f"{q['worst_us']:g}"
        nets = "; ".join(
            f"{n} p99.99 {_cell(p)} µs, max {_cell(m)} µs" for n, p, m in q["networks"]
        )
        lines.append(
            f"host qualification: {q['host']}: {q['state']}, worst {worst} µs on free RT "
            f"pCPUs {q['free_pcpus']}"
            + (f"; {nets}" if nets else "")
            + (" (emulated)" if q["emulated"] else "")
        )
        if q["fault"]:
            lines.append(f"  {q['fault']}")
    lines += [f"note: {n}" for n in summary["notes"]]
    return lines


def render_markdown(report: Report) -> str:
    """The report as Markdown: the same header, warnings and tables, and the pictures."""
    summary = summarise(report)
    lines = [f"# {report.title}", ""]
    header = _header_lines(summary)
    if header:
        lines += [f"- {h.strip()}" for h in header] + [""]
    warnings = summary["warnings"]
    if warnings:
        lines.append(f"> **{len(warnings)} WARNING(S): read these before the figures**")
        lines += [">", *[f"> - **WARNING** {_md(w)}" for w in warnings]]
    else:
        lines.append("No warnings.")
    for table in _tables(summary):
        lines += ["", f"## {table.heading}", ""]
        lines.append("| " + " | ".join(table.header) + " |")
        lines.append("|" + "---|" * len(table.header))
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in table.rows]
        if table.footnotes or table.faults:
            lines.append("")
            lines += [f"- n/a[{i}]: {_md(n)}" for i, n in enumerate(table.footnotes, 1)]
            lines += [f"- **{_md(n)}**" for n in table.faults]
    pictures = [
        (m.get("instance") or m.get("path"), m["picture"])
        for m in [*summary["cyclictest"], *summary["rtt"]]
        if m["picture"]
    ]
    if pictures:
        lines += ["", "## Pictures", ""]
        for name, pic in pictures:
            lines += [f"### {_md(name)}", "", f"![{_md(name)}]({pic})", ""]
        lines.pop()
    return "\n".join(lines) + "\n"


HTML_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:2px 6px;
font-size:13px;text-align:right}th{background:#eee}td:first-child{text-align:left}
.warn{background:#fff3cd;border:1px solid #e0b000;padding:.5em 1em}
.warn li{margin:.2em 0}figure{margin:1em 0}
"""


def render_html(report: Report) -> str:
    """The report as one standalone HTML page (pictures inline): what ``rtkvm report build``
    writes as report.html and the dashboard gives for download."""
    summary = summarise(report)
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{e(report.title)}</title>',
        f"<style>{HTML_STYLE}</style></head><body>",
        f"<h1>{e(report.title)}</h1>",
    ]
    header = _header_lines(summary)
    if header:
        out.append("<ul>" + "".join(f"<li>{e(h.strip())}</li>" for h in header) + "</ul>")
    warnings = summary["warnings"]
    if warnings:
        out.append(f'<div class="warn" role="alert"><strong>{len(warnings)} WARNING(S): '
                   "read these before the figures</strong><ul>")  # fmt: skip
        out += [f"<li>{e(w)}</li>" for w in warnings]
        out.append("</ul></div>")
    else:
        out.append("<p>No warnings.</p>")
    for table in _tables(summary):
        out.append(f"<h2>{e(table.heading)}</h2><table><tr>")
        out += [f"<th>{e(h)}</th>" for h in table.header]
        out.append("</tr>")
        for row in table.rows:
            out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
        out.append("</table>")
        notes = [f"n/a[{i}]: {n}" for i, n in enumerate(table.footnotes, 1)] + table.faults
        if notes:
            out.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    if not report.entries:
        out.append("<p>No measurements.</p>")
    for name, svg in render_pictures(report).items():
        out.append(f'<figure id="{e(name)}">{svg}<figcaption>{e(name)}</figcaption></figure>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_pictures(report: Report) -> dict[str, str]:
    """SVG documents by file name: a cyclictest histogram per guest, an RTT one per path."""
    out: dict[str, str] = {}
    for i, name in picture_names(report).items():
        entry = report.entries[i]
        notes = tuple(w.split(": ", 1)[1] for w in entry_warnings(entry))
        if isinstance(entry, CyclictestEntry):
            assert entry.result is not None
            title = f"cyclictest in {entry.instance}" + (f" ({entry.accel})" if entry.accel else "")
            out[name] = render_svg(entry.result, title=title, notes=notes)
        else:
            assert entry.report is not None
            title = f"round trip {entry.path}" + (f" on {entry.network}" if entry.network else "")
            out[name] = render_rtt_svg(entry.report, title=title, notes=notes)
    return out


def measurement_warnings(m: Mapping[str, Any]) -> list[str]:
    """What makes a measurement's figures untrustworthy (a measurement as the API shows it):
    a waived host, emulation and overflows its result does not already name, then the
    result's own notes. One rule for every place that shows a measurement."""
    out = []
    result = m.get("result") if isinstance(m.get("result"), dict) else None
    if m.get("rt_waiver"):
        out.append(
            f"the host is not RT-ready and was waived ({m['rt_waiver']}): these figures "
            "assure nothing"
        )
    if result is None:
        return out
    own = [str(w) for w in result.get("warnings") or []]
    said = " ".join(own).lower()
    if result.get("accel") == "tcg" and "tcg" not in said:
        out.append(TCG_WARNING)
    if (result.get("latency") or {}).get("overflowed") and "overflow" not in said:
        out.append("samples overflowed the histogram: no percentiles; raise --buckets")
    return out + own
