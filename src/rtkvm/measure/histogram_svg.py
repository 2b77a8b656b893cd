"""Render a cyclictest latency histogram as an SVG picture (pure, no dependencies).

One bar chart per result: latency in microseconds on the x axis (buckets
grouped so the picture has at most ``max_columns`` bars), sample counts on a
logarithmic y axis (the tail is what matters in real time and would vanish on
a linear one), a line at the acceptance threshold (40 µs: what Red Hat,
OpenShift and KubeVirt CI use for guest cyclictest), the true maximum from
cyclictest's summary, and a loud note when samples overflowed the histogram or
the run was emulated. :func:`render_chart` is the drawing itself, shared with
the round-trip picture (rtt_svg.py). This module renders text; it must not
read files, run anything, or compute statistics other than the bar heights.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from rtkvm.measure.cyclictest import CyclictestResult

ACCEPTANCE_US = 40
"""Guest cyclictest max that RT KVM deployments accept (see ANCHORS: OpenShift, KubeVirt)."""

_W, _H = 900, 450
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 60, 90
_NOTE_CHARS = (_W - _LEFT - _RIGHT) // 7
"""Characters of a note line that fit the plot's width at 12 px sans-serif (about 7 px each)."""
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Marker:
    """A dashed vertical line at ``us`` with a label (a target, a percentile, the max)."""

    us: float
    label: str
    colour: str


def render_svg(
    result: CyclictestResult,
    *,
    title: str,
    notes: tuple[str, ...] = (),
    max_columns: int = 200,
) -> str:
    """The histogram of every thread of ``result`` as an SVG document."""
    if max_columns < 1:
        raise ValueError("max_columns must be at least 1")
    top_us = _last_used_bucket(result)
    width_us = max(1, math.ceil((top_us + 1) / max_columns))
    columns = math.ceil((top_us + 1) / width_us)
    grouped = [
        [sum(h[c * width_us : (c + 1) * width_us]) for c in range(columns)]
        for h in result.histogram
    ]
    summary = "; ".join(
        f"thread {t.thread}: min {t.min_us} / avg {t.avg_us} / max {t.max_us} µs, "
        f"{t.samples} samples"
        + (f", {t.overflows} over {result.buckets} µs" if t.overflows else "")
        for t in result.threads
    )
    return render_chart(
        grouped,
        column_us=width_us,
        title=title,
        summary=summary,
        markers=_markers(result),
        notes=notes,
    )


def render_chart(
    series: Sequence[Sequence[int]],
    *,
    column_us: float,
    title: str,
    summary: str,
    markers: Sequence[Marker] = (),
    notes: Sequence[str] = (),
    x_label: str = "latency (µs)",
) -> str:
    """Bars of ``series[s][c]`` samples in ``[c * column_us, (c + 1) * column_us)`` µs.

    Counts on a log scale, one colour per series, markers as dashed lines
    (clamped to the right edge and labelled "off the chart" when beyond it),
    notes in red under the axis. The drawing shared by every latency picture.
    """
    if column_us <= 0:
        raise ValueError("column_us must be positive")
    columns = max((len(s) for s in series), default=0) or 1
    span_us = columns * column_us
    peak = max((v for s in series for v in s), default=0)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    # Notes are wrapped to the plot's width; two lines fit under the axis, the picture
    # grows for more.
    lines = [line for note in notes for line in textwrap.wrap(note, _NOTE_CHARS) or [""]]
    height = _H + 14 * max(0, len(lines) - 2)
    x_scale = plot_w / span_us
    log_top = math.log10(peak + 1) if peak else 1.0

    def y_of(count: int) -> float:
        return _TOP + plot_h - (math.log10(count + 1) / log_top) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{_W}" height="{height}" fill="white"/>',
        f'<text x="{_LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="{_LEFT}" y="40">{escape(summary)}</text>',
    ]
    for i, line in enumerate(lines):
        parts.append(
            f'<text x="{_LEFT}" y="{_H - 30 + 14 * i}" fill="#b00000">{escape(line)}</text>'
        )
    parts.append(_axes(math.ceil(span_us), x_scale, plot_h, peak, y_of, x_label))
    column_px = column_us * x_scale
    bar_w = max(1.0, column_px - (1 if column_px > 3 else 0))
    for t, counts in enumerate(series):
        colour = _COLOURS[t % len(_COLOURS)]
        for c, count in enumerate(counts):
            if not count:
                continue
            x = _LEFT + c * column_px
            y = y_of(count)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{_TOP + plot_h - y:.1f}" fill="{colour}" fill-opacity="0.75"/>'
            )
    for i, mark in enumerate(markers):
        us, label = mark.us, mark.label
        if us > span_us:
            label += " (off the chart)"
            us = span_us
        x = _LEFT + us * x_scale
        # Labels near the right edge are drawn to the left of their line; each
        # marker has its own text line so that close markers stay readable.
        right = x > _W - _RIGHT - 220
        anchor, tx = ("end", x - 3) if right else ("start", x + 3)
        ty = _TOP + 12 + 14 * i
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + plot_h}" '
            f'stroke="{mark.colour}" stroke-dasharray="4 3"/>'
            f'<text x="{tx:.1f}" y="{ty}" fill="{mark.colour}" text-anchor="{anchor}">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _last_used_bucket(result: CyclictestResult) -> int:
    used = [us for h in result.histogram for us, count in enumerate(h) if count]
    return max(max(used, default=0), ACCEPTANCE_US)


def _markers(result: CyclictestResult) -> list[Marker]:
    marks = [Marker(ACCEPTANCE_US, f"{ACCEPTANCE_US} µs target", "#2ca02c")]
    worst = max((t.max_us for t in result.threads), default=0)
    if worst:
        marks.append(Marker(worst, f"max {worst} µs", "#b00000"))
    return marks


def _axes(
    span_us: int,
    x_scale: float,
    plot_h: int,
    peak: int,
    y_of: Callable[[int], float],
    x_label: str,
) -> str:
    bottom = _TOP + plot_h
    out = [
        f'<line x1="{_LEFT}" y1="{bottom}" x2="{_W - _RIGHT}" y2="{bottom}" stroke="black"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}" stroke="black"/>',
        f'<text x="{_W // 2}" y="{bottom + 32}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="16" y="{_TOP + plot_h // 2}" transform="rotate(-90 16 {_TOP + plot_h // 2})" '
        'text-anchor="middle">samples (log scale)</text>',
    ]
    step = _nice_step(span_us)
    for us in range(0, span_us + 1, step):
        x = _LEFT + us * x_scale
        out.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="black"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{us}</text>')
    decade = 1
    while decade <= max(peak, 1):
        y = y_of(decade)
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{decade}</text>')
        out.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" stroke="#dddddd"/>'
        )
        decade *= 10
    return "\n".join(out)


def _nice_step(span: int) -> int:
    """A round tick spacing giving about 10 ticks over ``span``."""
    raw = max(1, span // 10)
    magnitude = int(10 ** (len(str(raw)) - 1))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude
