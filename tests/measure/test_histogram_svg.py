"""Histogram pictures: bars, markers and notes in the SVG; saved results read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from rtkvm.cli.report import report
from rtkvm.errors import MeasureError
from rtkvm.measure.cyclictest import CyclictestResult, ThreadStats, result_from_dict
from rtkvm.measure.histogram_svg import ACCEPTANCE_US, render_svg

SVG = "{http://www.w3.org/2000/svg}"


def _result(counts: dict[int, int], *, buckets: int = 100, overflows: int = 0) -> CyclictestResult:
    row = tuple(counts.get(us, 0) for us in range(buckets))
    stats = ThreadStats(
        0,
        min(counts),
        12,
        max(counts) + 500 * bool(overflows),
        sum(counts.values()),
        overflows,
        None if overflows else {"p99": 30},
    )
    return CyclictestResult(buckets, (row,), (stats,))


def _texts(svg: str) -> list[str]:
    root = etree.fromstring(svg.encode())
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_bars_are_the_used_buckets_on_a_log_scale() -> None:
    svg = render_svg(_result({5: 1, 10: 1000, 60: 10}), title="t")
    root = etree.fromstring(svg.encode())
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("fill") != "white"]
    assert len(bars) == 3  # one per used bucket: 61 buckets fit in 200 columns
    heights = sorted(float(b.get("height", "0")) for b in bars)
    assert heights[0] < heights[1] < heights[2]
    assert heights[1] / heights[2] == pytest.approx(1 / 3, rel=0.05)  # log10(11)/log10(1001)
    texts = _texts(svg)
    assert f"{ACCEPTANCE_US} µs target" in texts and "max 60 µs" in texts


def test_wide_histograms_are_grouped_into_columns() -> None:
    counts = {us: 1 for us in range(0, 1000, 3)}
    svg = render_svg(_result(counts, buckets=1000), title="t", max_columns=100)
    root = etree.fromstring(svg.encode())
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("fill") != "white"]
    assert len(bars) == 100  # 1000 µs in columns of 10 µs


def test_overflow_and_notes_are_said_not_hidden() -> None:
    result = _result({20: 5, 90: 1}, overflows=3)
    svg = render_svg(result, title="rt1 <tcg>", notes=("measured under TCG",))
    texts = _texts(svg)
    assert "rt1 <tcg>" in texts  # escaped in the document, intact when parsed
    assert "measured under TCG" in texts
    assert any("3 over 100 µs" in t for t in texts)
    assert "max 590 µs (off the chart)" in texts


def test_saved_results_read_back() -> None:
    result = _result({3: 2, 7: 9}, buckets=50)
    assert result_from_dict(json.loads(json.dumps(result.to_dict()))) == result


@pytest.mark.parametrize(
    "data",
    [{}, {"buckets": 10, "threads": [], "histogram": [{"us": 99, "counts": []}]}, [1, 2]],
)
def test_bad_saved_results_are_refused(data: object) -> None:
    with pytest.raises(MeasureError, match="not a cyclictest result"):
        result_from_dict(data, source="x.json")


def test_cli_writes_the_picture(tmp_path: Path) -> None:
    saved = {"guest": "rt1", "accel": "tcg", "latency": _result({10: 4}).to_dict()}
    (tmp_path / "r.json").write_text(json.dumps(saved))
    out = tmp_path / "h.svg"
    result = CliRunner().invoke(report, ["histogram", str(tmp_path / "r.json"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    texts = _texts(out.read_text())
    assert "cyclictest in rt1 (tcg)" in texts
    assert any("meaningless for real time" in t for t in texts)


def test_long_notes_wrap_inside_the_picture() -> None:
    """A note longer than the plot is wide is wrapped, and the picture grows to hold it."""
    import re

    from rtkvm.measure.histogram_svg import _W, render_chart

    long_note = "RT WAIVER: " + "make demo on a host the doctor calls not RT-ready " * 6
    svg = render_chart([[1, 2, 3]], column_us=1.0, title="t", summary="s", notes=(long_note,))
    lines = re.findall(r'fill="#b00000">([^<]*)</text>', svg)
    assert len(lines) >= 3
    assert " ".join(lines) == " ".join(long_note.split())  # nothing lost
    assert all(len(line) * 7 <= _W - 90 for line in lines)  # each fits the plot's width
    height = int(re.search(r'<svg [^>]*height="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    last_y = max(int(y) for y in re.findall(r'<text x="70" y="(\d+)" fill="#b00000"', svg))
    assert last_y < height
