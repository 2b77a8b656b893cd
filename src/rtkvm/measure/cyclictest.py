"""Parse cyclictest's histogram output (``-q -h N``) and compute latency statistics.

Input is the text cyclictest prints with ``-h``: ``# Histogram``, one row per
microsecond bucket with one count per thread, then ``# Total``, ``# Min
Latencies``, ``# Avg Latencies``, ``# Max Latencies`` and ``# Histogram
Overflows``. Min, avg and max always come from those summary lines (the true
values, even when samples overflow the histogram); percentiles come from the
buckets and are given only when no sample of that thread overflowed, as
rteval does. The histogram itself is kept. Pure functions on text: this
module must not run cyclictest or read files.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from rtkvm.errors import MeasureError

PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)
_ROW = re.compile(r"^(\d+)((?:\s+\d+)+)\s*$")
_SUMMARY = re.compile(
    r"^#\s*(Total|Min Latencies|Avg Latencies|Max Latencies|Histogram Overflows):"
    r"((?:\s+\d+)+)\s*$"
)


@dataclass(frozen=True)
class ThreadStats:
    """Latency of one cyclictest thread, in microseconds."""

    thread: int
    min_us: int
    avg_us: int
    max_us: int
    in_histogram: int
    overflows: int
    percentiles: dict[str, int] | None
    """p50..p99.99 from the buckets; None when samples overflowed (they would be wrong)."""
    note: str = ""

    @property
    def samples(self) -> int:
        return self.in_histogram + self.overflows


@dataclass(frozen=True)
class CyclictestResult:
    """Per-thread statistics plus the histogram they came from."""

    buckets: int
    histogram: tuple[tuple[int, ...], ...]
    """histogram[t][us]: samples of thread t with latency ``us``."""
    threads: tuple[ThreadStats, ...]

    @property
    def overflowed(self) -> bool:
        return any(t.overflows for t in self.threads)

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": self.buckets,
            "overflowed": self.overflowed,
            "threads": [
                {
                    "thread": t.thread,
                    "min_us": t.min_us,
                    "avg_us": t.avg_us,
                    "max_us": t.max_us,
                    "samples": t.samples,
                    "in_histogram": t.in_histogram,
                    "overflows": t.overflows,
                    "percentiles_us": t.percentiles,
                    "note": t.note,
                }
                for t in self.threads
            ],
            "histogram": [
                {"us": us, "counts": [h[us] for h in self.histogram]}
                for us in range(self.buckets)
                if any(h[us] for h in self.histogram)
            ],
        }


def result_from_dict(data: Any, *, source: str = "result") -> CyclictestResult:
    """The inverse of :meth:`CyclictestResult.to_dict`; MeasureError names what is wrong."""
    try:
        buckets = int(data["buckets"])
        threads = tuple(
            ThreadStats(
                thread=int(t["thread"]),
                min_us=int(t["min_us"]),
                avg_us=int(t["avg_us"]),
                max_us=int(t["max_us"]),
                in_histogram=int(t["in_histogram"]),
                overflows=int(t["overflows"]),
                percentiles=(
                    None
                    if t["percentiles_us"] is None
                    else {str(k): int(v) for k, v in t["percentiles_us"].items()}
                ),
                note=str(t.get("note", "")),
            )
            for t in data["threads"]
        )
        rows = [[0] * buckets for _ in threads]
        for row in data["histogram"]:
            us = int(row["us"])
            if not 0 <= us < buckets or len(row["counts"]) != len(threads):
                raise ValueError(f"histogram row {row!r} does not fit {buckets} buckets")
            for t, count in enumerate(row["counts"]):
                rows[t][us] = int(count)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MeasureError(
            f"{source}: not a cyclictest result saved by rtkvm guest measure --save ({exc})"
        ) from None
    return CyclictestResult(buckets, tuple(tuple(r) for r in rows), threads)


def percentile_label(p: float) -> str:
    return f"p{p:g}"


def percentile(counts: tuple[int, ...], p: float) -> int:
    """Smallest bucket with at least p% of the samples at or below it."""
    total = sum(counts)
    if total == 0:
        raise MeasureError("no samples in the histogram: cannot compute percentiles")
    rank = max(1, math.ceil(total * p / 100.0))
    running = 0
    for us, count in enumerate(counts):
        running += count
        if running >= rank:
            return us
    raise AssertionError("unreachable: the rank is at most the total")


def parse(text: str) -> CyclictestResult:
    """Parse cyclictest -h output; lines other than its own (kernel messages) are ignored."""
    rows: list[tuple[int, list[int]]] = []
    summary: dict[str, list[int]] = {}
    seen_histogram = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == "# Histogram":
            seen_histogram = True
            continue
        match = _SUMMARY.match(stripped)
        if match:
            summary[match.group(1)] = [int(v) for v in match.group(2).split()]
            continue
        if seen_histogram and "Total" not in summary:
            row = _ROW.match(stripped)
            if row:
                rows.append((int(row.group(1)), [int(v) for v in row.group(2).split()]))
    if not seen_histogram:
        raise MeasureError("no '# Histogram' line: was cyclictest run with -h?")
    missing = [k for k in ("Min Latencies", "Avg Latencies", "Max Latencies") if k not in summary]
    if missing:
        raise MeasureError(f"cyclictest summary incomplete, missing: {', '.join(missing)}")
    nthreads = len(summary["Max Latencies"])
    for us, counts in rows:
        if len(counts) != nthreads:
            raise MeasureError(f"histogram row {us} has {len(counts)} columns, not {nthreads}")
    buckets = max((us for us, _ in rows), default=-1) + 1
    histogram = [[0] * buckets for _ in range(nthreads)]
    for us, counts in rows:
        for t, count in enumerate(counts):
            histogram[t][us] = count
    overflows = summary.get("Histogram Overflows", [0] * nthreads)
    threads = []
    for t in range(nthreads):
        column = tuple(histogram[t])
        in_hist = sum(column)
        stats = ThreadStats(
            thread=t,
            min_us=summary["Min Latencies"][t],
            avg_us=summary["Avg Latencies"][t],
            max_us=summary["Max Latencies"][t],
            in_histogram=in_hist,
            overflows=overflows[t],
            percentiles=None,
        )
        if overflows[t]:
            note = (
                f"{overflows[t]} samples above the {buckets} us histogram: percentiles "
                "withheld; min/avg/max are cyclictest's own summary"
            )
            threads.append(_with(stats, note=note))
        elif in_hist == 0:
            threads.append(_with(stats, note="empty histogram: no percentiles"))
        else:
            pcts = {percentile_label(p): percentile(column, p) for p in PERCENTILES}
            threads.append(_with(stats, percentiles=pcts))
    return CyclictestResult(buckets, tuple(tuple(h) for h in histogram), tuple(threads))


def _with(stats: ThreadStats, **changes: Any) -> ThreadStats:
    data = stats.__dict__ | changes
    return ThreadStats(**data)


def render(result: CyclictestResult) -> str:
    """A few lines for people."""
    lines = []
    for t in result.threads:
        head = (
            f"thread {t.thread}: min {t.min_us} us, avg {t.avg_us} us, max {t.max_us} us, "
            f"{t.samples} samples, {t.overflows} histogram overflows"
        )
        lines.append(head)
        if t.percentiles:
            lines.append("  " + ", ".join(f"{k} {v} us" for k, v in t.percentiles.items()))
        if t.note:
            lines.append(f"  note: {t.note}")
    return "\n".join(lines)
