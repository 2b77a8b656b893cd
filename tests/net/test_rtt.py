"""sockperf ping-pong parsing (golden output of a real run) and the statistics built on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtkvm.errors import MeasureError
from rtkvm.net.rtt import (
    build_report,
    histogram,
    parse_full_log,
    parse_summary,
    percentile,
    render,
    resolvable,
)
from rtkvm.net.rttrun import client_args

DATA = Path(__file__).parent / "data"


def test_golden_sockperf_run() -> None:
    summary = parse_summary((DATA / "sockperf_pingpong.txt").read_text())
    samples = parse_full_log((DATA / "sockperf_full.csv").read_text())
    assert summary.metric == "rtt"
    assert summary.observations == 549 == len(samples)
    assert (summary.min_us, summary.max_us) == (12.112, 27.331)
    assert summary.percentiles[99.999] == 27.331
    assert summary.dropped == 0
    report = build_report("a -> b", summary, samples, bucket_us=5)
    # The log's RTT column is rounded on its own: within a nanosecond or two of the summary.
    assert report.min_us == pytest.approx(12.112, abs=0.002)
    assert report.max_us == pytest.approx(27.331, abs=0.002)
    assert report.percentiles[99.0] == pytest.approx(summary.percentiles[99.0], abs=1.0)
    assert report.unresolved == (99.9, 99.99)
    assert sum(report.histogram.counts) == 549
    text = render(report)
    assert "p99.99=" in text and "need more than 549 samples" in text


def test_no_server_means_no_statistics() -> None:
    with pytest.raises(MeasureError, match="printed no statistics"):
        parse_summary((DATA / "sockperf_noserver.txt").read_text())


def test_summary_and_log_must_agree() -> None:
    summary = parse_summary((DATA / "sockperf_pingpong.txt").read_text())
    with pytest.raises(MeasureError, match="disagrees"):
        build_report("x", summary, [1.0, 2.0])
    with pytest.raises(MeasureError, match="no samples"):
        build_report("x", summary, [])


@pytest.mark.parametrize(
    ("pct", "expected"), [(0.0, 1.0), (50.0, 50.0), (99.0, 99.0), (99.99, 100.0), (100.0, 100.0)]
)
def test_percentile_nearest_rank(pct: float, expected: float) -> None:
    assert percentile([float(v) for v in range(100, 0, -1)], pct) == expected


def test_resolvable_and_histogram() -> None:
    assert resolvable(99.99, 10_000) and not resolvable(99.99, 9_999)
    h = histogram([0.5, 9.9, 10.0, 35.0], 10.0)
    assert h.counts == (2, 1, 0, 1) and h.rows() == [(0.0, 2), (10.0, 1), (30.0, 1)]
    with pytest.raises(MeasureError):
        histogram([1.0], 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"seconds": 0}, "duration"), ({"mps": 0}, "message rate"), ({"msg_size": 8}, "size")],
)
def test_client_args_bounds(kwargs: dict[str, int], message: str) -> None:
    base = {"seconds": 5, "mps": 1000, "msg_size": 64}
    with pytest.raises(MeasureError, match=message):
        client_args("169.254.0.1", 11111, full_log="/tmp/x", **{**base, **kwargs})
    assert "--full-rtt" in client_args("169.254.0.1", 11111, full_log="/tmp/x", **base)
