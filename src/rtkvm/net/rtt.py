"""Round-trip statistics from sockperf ping-pong: parse, check, summarise, histogram.

sockperf (Debian package ``sockperf``) is the established tool: its client prints min,
percentiles up to 99.999 and max of the round trip (with ``--full-rtt``), and
``--full-log FILE`` writes every sample, from which the histogram is kept; the guest
image can print that log as counts per distinct round trip instead
(``rtkvm.rttlog=hist``, :func:`parse_value_counts`). This module parses them, recomputes
the statistics from the samples as a cross-check, and says which percentiles the sample
count cannot resolve (99.99 needs at least 10,000 samples). It is pure: it must not run
sockperf (see rttrun.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rtkvm.errors import MeasureError

DEFAULT_SECONDS = 10
"""How long a sockperf ping-pong run lasts unless asked otherwise."""
DEFAULT_MPS = 2000
"""Messages per second of a run: one every 500 µs, well below what a polled path carries."""
DEFAULT_MSG_SIZE = 64
"""Bytes per message: a control-loop sized payload."""
DEFAULT_BUCKET_US = 10.0
"""Width of a histogram bucket, in µs."""

REPORTED_PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PCT = re.compile(r"--->\s+percentile\s+([\d.]+)\s+=\s+([\d.]+)")
_MAX = re.compile(r"--->\s+<MAX> observation\s+=\s+([\d.]+)")
_MIN = re.compile(r"--->\s+<MIN> observation\s+=\s+([\d.]+)")
_AVG = re.compile(r"avg-(rtt|lat)=([\d.]+)")
_COUNT = re.compile(r"Total (\d+) observations")
_DROPS = re.compile(
    r"# dropped messages = (\d+); # duplicated messages = (\d+); # out-of-order messages = (\d+)"
)
_VALUE_COUNT = re.compile(r"^\s*(\d+) ([1-9]\d*)\s*$")
_SAMPLE = re.compile(r"^\s*\d+,\s*[\d.]+,\s*[\d.]+,\s*([\d.]+)\s*$")


@dataclass(frozen=True)
class SockperfSummary:
    """What the sockperf client printed (microseconds)."""

    metric: str
    """'rtt' with --full-rtt, 'lat' (half round trip) without."""
    observations: int
    min_us: float
    avg_us: float
    max_us: float
    percentiles: dict[float, float]
    dropped: int
    duplicated: int
    out_of_order: int


def parse_summary(text: str) -> SockperfSummary:
    """Parse the client's statistics block; raises MeasureError if it is absent."""
    clean = _ANSI.sub("", text)
    found = {name: rx.search(clean) for name, rx in (("max", _MAX), ("min", _MIN), ("avg", _AVG))}
    missing = [name for name, match in found.items() if match is None]
    count = _COUNT.search(clean)
    if missing or count is None:
        raise MeasureError(
            "sockperf printed no statistics (missing "
            + ", ".join(missing or ["observation count"])
            + "): did the server answer? check the address and that the peer is reachable"
        )
    drops = _DROPS.search(clean)
    avg = found["avg"]
    assert avg is not None and found["min"] is not None and found["max"] is not None
    return SockperfSummary(
        metric=avg.group(1),
        observations=int(count.group(1)),
        min_us=float(found["min"].group(1)),
        avg_us=float(avg.group(2)),
        max_us=float(found["max"].group(1)),
        percentiles={float(p): float(v) for p, v in _PCT.findall(clean)},
        dropped=int(drops.group(1)) if drops else 0,
        duplicated=int(drops.group(2)) if drops else 0,
        out_of_order=int(drops.group(3)) if drops else 0,
    )


def parse_full_log(text: str) -> list[float]:
    """Every round trip (µs) from a ``--full-log`` CSV (rows: packet, tx, rx, rtt)."""
    return [float(m.group(1)) for line in text.splitlines() if (m := _SAMPLE.match(line))]


def parse_value_counts(text: str) -> tuple[list[float], float]:
    """(every round trip in µs, the unit they were rounded to) from the guest image's histogram
    of a full log: a line ``unit_us U``, then ``VALUE COUNT`` lines, VALUE in units of U
    (image.toml's ``rtt_histogram_awk``). Other lines are skipped: on a serial console the
    guest kernel's own messages can land between them (the callers check the count and the
    extremes against sockperf's). MeasureError when the unit is missing or not positive."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or len(lines[0]) != 2 or lines[0][0] != "unit_us":
        raise MeasureError("the round-trip histogram does not start with its unit (unit_us U)")
    try:
        unit = float(lines[0][1])
    except ValueError:
        raise MeasureError(
            f"the round-trip histogram's unit {lines[0][1]!r} is not a number"
        ) from None
    if unit <= 0:
        raise MeasureError(f"the round-trip histogram's unit {unit} is not positive")
    pairs = [(int(m.group(1)), int(m.group(2))) for line in text.splitlines()[1:]
             if (m := _VALUE_COUNT.match(line))]  # fmt: skip
    samples = [round(value * unit, 6) for value, count in sorted(pairs) for _ in range(count)]
    return samples, unit


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of unsorted samples."""
    if not samples:
        raise MeasureError("no samples: cannot compute a percentile")
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def resolvable(pct: float, count: int) -> bool:
    """Whether ``count`` samples can tell percentile ``pct`` apart from the maximum."""
    return count * (100.0 - pct) / 100.0 >= 1.0 - 1e-9


def samples_needed(pct: float) -> int:
    """The fewest samples that resolve percentile ``pct`` (p99.99: 10,000)."""
    return math.ceil(100.0 / (100.0 - pct) - 1e-9)


@dataclass(frozen=True)
class Histogram:
    bucket_us: float
    counts: tuple[int, ...]
    """counts[i] = samples in [i*bucket_us, (i+1)*bucket_us)."""

    def rows(self) -> list[tuple[float, int]]:
        return [(i * self.bucket_us, c) for i, c in enumerate(self.counts) if c]


def histogram(samples: Sequence[float], bucket_us: float) -> Histogram:
    if bucket_us <= 0:
        raise MeasureError(f"histogram bucket must be positive, not {bucket_us}")
    if not samples:
        return Histogram(bucket_us, ())
    counts = [0] * (int(max(samples) // bucket_us) + 1)
    for value in samples:
        counts[int(value // bucket_us)] += 1
    return Histogram(bucket_us, tuple(counts))


@dataclass(frozen=True)
class RttReport:
    """The round trip between two endpoints, in microseconds."""

    path: str
    samples: int
    min_us: float
    max_us: float
    avg_us: float
    percentiles: dict[float, float]
    unresolved: tuple[float, ...]
    """Percentiles the sample count is too small to resolve (they equal the max)."""
    histogram: Histogram
    tool: str = "sockperf ping-pong --full-rtt"
    warnings: tuple[str, ...] = field(default=())


def build_report(
    path: str,
    summary: SockperfSummary,
    samples: Sequence[float],
    *,
    bucket_us: float = DEFAULT_BUCKET_US,
    warnings: Sequence[str] = (),
    resolution_us: float = 0.0,
) -> RttReport:
    """Statistics from the samples, cross-checked against sockperf's own summary.

    ``resolution_us``: the samples were rounded to the nearest multiple of it (a histogram
    of the full log), so they may differ from sockperf's min and max by half of it."""
    if summary.metric != "rtt":
        raise MeasureError("sockperf reported one-way latency; run the client with --full-rtt")
    if not samples:
        raise MeasureError("the sockperf full log holds no samples")
    notes = list(warnings)
    low, high = min(samples), max(samples)
    tolerance = 0.01 + 1e-3 * high + resolution_us / 2
    if abs(low - summary.min_us) > tolerance or abs(high - summary.max_us) > tolerance:
        raise MeasureError(
            f"sockperf summary (min {summary.min_us}, max {summary.max_us}) disagrees with its "
            f"full log (min {low}, max {high}); the log file is not from this run"
        )
    if summary.dropped or summary.out_of_order or summary.duplicated:
        notes.append(
            f"{summary.dropped} dropped, {summary.duplicated} duplicated, "
            f"{summary.out_of_order} out-of-order messages: the worst case is not bounded"
        )
    return RttReport(
        path=path,
        samples=len(samples),
        min_us=low,
        max_us=high,
        avg_us=sum(samples) / len(samples),
        percentiles={p: percentile(samples, p) for p in REPORTED_PERCENTILES},
        unresolved=tuple(p for p in REPORTED_PERCENTILES if not resolvable(p, len(samples))),
        histogram=histogram(samples, bucket_us),
        warnings=tuple(notes),
    )


def report_from_dict(data: Any, *, source: str = "report") -> RttReport:
    """The inverse of the JSON of ``rtkvm net rtt -f json``; MeasureError names what is wrong."""
    try:
        hist = data["histogram"]
        return RttReport(
            path=str(data["path"]),
            samples=int(data["samples"]),
            min_us=float(data["min_us"]),
            max_us=float(data["max_us"]),
            avg_us=float(data["avg_us"]),
            percentiles={float(k): float(v) for k, v in data["percentiles"].items()},
            unresolved=tuple(float(p) for p in data["unresolved"]),
            histogram=Histogram(float(hist["bucket_us"]), tuple(int(c) for c in hist["counts"])),
            tool=str(data.get("tool", "sockperf")),
            warnings=tuple(str(w) for w in data.get("warnings", ())),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MeasureError(
            f"{source}: not a round trip saved by `rtkvm net rtt -f json` ({exc!r})"
        ) from None


def render(report: RttReport, *, histogram_rows: int = 20) -> str:
    """A few lines for people: the statistics, then the busiest histogram buckets."""
    lines = [f"round trip {report.path} ({report.tool}, {report.samples} samples, µs)"]
    stats = [("min", report.min_us)]
    stats += [(f"p{p:g}", v) for p, v in report.percentiles.items()]
    stats += [("max", report.max_us), ("avg", report.avg_us)]
    lines.append("  " + "  ".join(f"{name}={value:.1f}" for name, value in stats))
    if report.unresolved:
        lines.append(
            "  note: "
            + ", ".join(f"p{p:g} needs {samples_needed(p):,} samples" for p in report.unresolved)
            + f" to differ from the max; this run has {report.samples:,}"
        )
    rows = report.histogram.rows()
    shown = sorted(sorted(rows, key=lambda r: -r[1])[:histogram_rows])
    lines.append(f"  histogram ({report.histogram.bucket_us:g} µs buckets, non-empty):")
    lines += [f"    {low:>10.0f} {count:>8d}" for low, count in shown]
    lines += [f"  warning: {w}" for w in report.warnings]
    return "\n".join(lines)
