"""cyclictest histogram parsing: golden files captured on this kind of machine, and tables."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest

from rtkvm.errors import MeasureError
from rtkvm.guest.console import cyclictest_block
from rtkvm.measure.cyclictest import PERCENTILES, parse, percentile, render

DATA = Path(__file__).parent / "data"


def _expand(counts: tuple[int, ...]) -> list[int]:
    return [us for us, n in enumerate(counts) for _ in range(n)]


def test_no_overflow_capture_gives_percentiles_matching_the_sorted_samples() -> None:
    text = gzip.decompress((DATA / "host_1thread_no_overflow.txt.gz").read_bytes()).decode()
    result = parse(text)
    assert result.buckets == 30000
    assert not result.overflowed
    (t,) = result.threads
    assert (t.min_us, t.avg_us, t.max_us, t.overflows) == (4, 57, 8489, 0)
    assert t.in_histogram == 1000 == t.samples
    samples = _expand(result.histogram[0])
    assert samples[0] == t.min_us and samples[-1] == t.max_us
    assert t.percentiles is not None
    for p in PERCENTILES:
        rank = max(1, math.ceil(len(samples) * p / 100))
        assert t.percentiles[f"p{p:g}"] == samples[rank - 1]
    assert t.percentiles["p50"] <= t.percentiles["p99"] <= t.max_us


def test_two_threads_with_overflows_withhold_percentiles_and_keep_the_summary() -> None:
    result = parse((DATA / "host_2threads.txt").read_text())
    assert len(result.threads) == 2
    t0, t1 = result.threads
    assert (t0.min_us, t0.avg_us, t0.max_us, t0.overflows) == (6, 60, 14445, 6)
    assert (t1.min_us, t1.avg_us, t1.max_us, t1.overflows) == (9, 107, 13645, 8)
    assert (t0.in_histogram, t1.in_histogram) == (994, 992)  # the '# Total' line
    assert t0.samples == t1.samples == 1000
    assert t0.percentiles is None and t1.percentiles is None
    assert "withheld" in t0.note
    # the true max is above the histogram: only the summary knows it
    assert t0.max_us > result.buckets
    assert result.to_dict()["overflowed"] is True


def test_guest_console_log_from_tcg_is_cut_between_markers_and_parsed() -> None:
    console = (DATA / "console_tcg_overflow.log").read_text()
    raw, rc = cyclictest_block(console)
    assert rc == 0
    assert "RTKVM" not in raw
    result = parse(raw)
    (t,) = result.threads
    assert (t.min_us, t.avg_us, t.max_us, t.overflows, t.in_histogram) == (70, 238, 6843, 22, 478)
    assert t.percentiles is None
    text = render(result)
    assert "22 histogram overflows" in text and "max 6843 us" in text


def test_histogram_is_kept_in_the_json_form() -> None:
    result = parse((DATA / "host_2threads.txt").read_text())
    rows = result.to_dict()["histogram"]
    assert sum(r["counts"][0] for r in rows) == 994
    assert all(any(r["counts"]) for r in rows)


SMALL = """# Histogram
000000 000000
000001 000005
000002 000003
000003 000002
# Total: 000000010
# Min Latencies: 00001
# Avg Latencies: 00001
# Max Latencies: 00003
# Histogram Overflows: 00000
"""


@pytest.mark.parametrize(
    ("p", "want"), [(50.0, 1), (60.0, 2), (80.0, 2), (81.0, 3), (90.0, 3), (99.99, 3)]
)
def test_percentile_table(p: float, want: int) -> None:
    assert percentile(parse(SMALL).histogram[0], p) == want


def test_kernel_messages_inside_the_output_are_ignored() -> None:
    noisy = SMALL.replace("000002 000003", "[    4.1] random: crng init done\n000002 000003")
    assert parse(noisy).histogram == parse(SMALL).histogram


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# Min Latencies: 00001\n", "Histogram"),
        ("# Histogram\n000000 000001\n# Min Latencies: 00001\n", "missing"),
        (
            "# Histogram\n000000 000001 000002\n# Min Latencies: 00001\n"
            "# Avg Latencies: 00001\n# Max Latencies: 00001\n",
            "columns",
        ),
    ],
)
def test_bad_output_is_refused(text: str, message: str) -> None:
    with pytest.raises(MeasureError, match=message):
        parse(text)


def test_empty_histogram_has_no_percentiles() -> None:
    with pytest.raises(MeasureError):
        percentile((0, 0, 0), 50.0)
