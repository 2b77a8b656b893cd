"""Render a sockperf round-trip histogram as an SVG picture (pure, no dependencies).

The same picture as the cyclictest histogram (histogram_svg.render_chart):
round trip in microseconds on the x axis (the report's buckets grouped so
the picture has at most ``max_columns`` bars), sample counts on a log scale,
dashed lines at p99, p99.9 (only where the sample count resolves them) and
the maximum, and notes in red. This module renders text; it must not read
files, run sockperf, or compute statistics other than the bar heights.
"""

from __future__ import annotations

import math

from rtkvm.measure.histogram_svg import Marker, render_chart
from rtkvm.net.rtt import RttReport

MARKED_PERCENTILES = (99.0, 99.9)


def render_rtt_svg(
    report: RttReport,
    *,
    title: str,
    notes: tuple[str, ...] = (),
    max_columns: int = 200,
) -> str:
    """The round-trip histogram of ``report`` as an SVG document."""
    if max_columns < 1:
        raise ValueError("max_columns must be at least 1")
    counts = report.histogram.counts
    group = max(1, math.ceil(len(counts) / max_columns))
    grouped = [sum(counts[i : i + group]) for i in range(0, len(counts), group)]
    summary = (
        f"{report.samples} round trips: min {report.min_us:.1f} / avg {report.avg_us:.1f} / "
        f"max {report.max_us:.1f} µs ({report.tool})"
    )
    return render_chart(
        [grouped],
        column_us=report.histogram.bucket_us * group,
        title=title,
        summary=summary,
        markers=_markers(report),
        notes=notes,
        x_label="round trip (µs)",
    )


def _markers(report: RttReport) -> list[Marker]:
    marks = [
        Marker(report.percentiles[p], f"p{p:g} {report.percentiles[p]:.1f} µs", "#ff7f0e")
        for p in MARKED_PERCENTILES
        if p in report.percentiles and p not in report.unresolved
    ]
    marks.append(Marker(report.max_us, f"max {report.max_us:.1f} µs", "#b00000"))
    return marks
