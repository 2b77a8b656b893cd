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
    parse_value_counts,
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
    assert "p99.99=" in text
    assert (
        "p99.9 needs 1,000 samples, p99.99 needs 10,000 samples to differ from the max; "
        "this run has 549" in text
    )


def test_no_server_means_no_statistics() -> None:
    with pytest.raises(MeasureError, match="printed no statistics"):
        parse_summary((DATA / "sockperf_noserver.txt").read_text())


def test_summary_and_log_must_agree() -> None:
    summary = parse_summary((DATA / "sockperf_pingpong.txt").read_text())
    with pytest.raises(MeasureError, match="disagrees"):
        build_report("x", summary, [1.0, 2.0])
    with pytest.raises(MeasureError, match="no samples"):
        build_report("x", summary, [])


def test_a_histogram_of_the_full_log_gives_the_same_statistics_to_its_unit() -> None:
    summary = parse_summary((DATA / "sockperf_pingpong.txt").read_text())
    exact = parse_full_log((DATA / "sockperf_full.csv").read_text())
    counts: dict[int, int] = {}
    for value in exact:
        counts[int(value / 0.1 + 0.5)] = counts.get(int(value / 0.1 + 0.5), 0) + 1
    text = "unit_us 0.1\n" + "".join(f"{v} {c}\n" for v, c in counts.items())
    samples, unit = parse_value_counts(text)
    assert unit == 0.1 and len(samples) == 549 and samples == sorted(samples)
    report = build_report("x", summary, samples, resolution_us=unit)
    assert (report.min_us, report.max_us) == (12.1, 27.3)
    exact_report = build_report("x", summary, exact)
    for pct, value in exact_report.percentiles.items():
        assert report.percentiles[pct] == pytest.approx(value, abs=0.05)


def test_lines_that_are_not_value_count_pairs_are_skipped() -> None:
    """The guest kernel's messages can land between the histogram's lines on a console."""
    text = "unit_us 0.1\n121 3\n[   12.3] rcu: INFO: rcu_preempt detected stalls\n121\n0 0\n130 1\n"
    assert parse_value_counts(text) == ([12.1, 12.1, 12.1, 13.0], 0.1)


def test_the_unit_widens_the_cross_check_by_half_of_it_and_no_more() -> None:
    summary = parse_summary((DATA / "sockperf_pingpong.txt").read_text())
    low = [12.2, 20.0, 27.3]  # min 0.088 off sockperf's 12.112
    with pytest.raises(MeasureError, match="disagrees"):
        build_report("x", summary, low, resolution_us=0.1)
    assert build_report("x", summary, low, resolution_us=0.2).min_us == 12.2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "does not start with its unit"),
        ("121 3\n", "does not start with its unit"),
        ("unit_us x\n121 1\n", "is not a number"),
        ("unit_us 0\n121 1\n", "is not positive"),
    ],
)
def test_a_malformed_histogram_is_refused(text: str, message: str) -> None:
    with pytest.raises(MeasureError, match=message):
        parse_value_counts(text)


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
