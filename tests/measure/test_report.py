"""The one latency report: shapes detected or refused, figures and warnings in every output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from rtkvm.errors import InputError, MeasureError
from rtkvm.measure.cyclictest import parse
from rtkvm.measure.histogram_svg import render_chart
from rtkvm.measure.report import (
    CyclictestEntry,
    Report,
    RttEntry,
    doctor_from_dict,
    load,
    render_markdown,
    render_pictures,
    render_text,
    summarise,
)
from rtkvm.net.rtt import SockperfSummary, build_report
from rtkvm.net.rtt import report_from_dict as rtt_report_from_dict
from rtkvm.serialize import dumps

DATA = Path(__file__).parent / "data"
SVG = "{http://www.w3.org/2000/svg}"


def cyclictest_text(columns: list[dict[int, int]], *, overflows: int = 0) -> str:
    """cyclictest -q -h output for threads with these {µs: count} histograms."""
    buckets = max(us for c in columns for us in c) + 1
    lines = ["# /dev/cpu_dma_latency set to 0us", "# Histogram"]
    for us in range(buckets):
        lines.append(f"{us:06d} " + "\t".join(f"{c.get(us, 0):06d}" for c in columns))
    total = [sum(c.values()) + overflows for c in columns]
    avg = [sum(us * n for us, n in c.items()) // sum(c.values()) for c in columns]
    worst = [max(c) + (500 if overflows else 0) for c in columns]
    lines.append("# Total: " + " ".join(f"{t:09d}" for t in total))
    lines.append("# Min Latencies: " + " ".join(f"{min(c):05d}" for c in columns))
    lines.append("# Avg Latencies: " + " ".join(f"{a:05d}" for a in avg))
    lines.append("# Max Latencies: " + " ".join(f"{m:05d}" for m in worst))
    lines.append("# Histogram Overflows: " + " ".join(f"{overflows:05d}" for _ in columns))
    return "\n".join(lines) + "\n"


def saved_cyclictest(
    guest: str, columns: list[dict[int, int]], *, accel: str = "kvm", **extra: Any
) -> dict[str, Any]:
    """What `rtkvm guest measure --save` writes."""
    result = parse(cyclictest_text(columns, overflows=extra.pop("overflows", 0)))
    return {
        "guest": guest,
        "accel": accel,
        "boot_seconds": 4.2,
        "run_seconds": 3.1,
        "guest_realtime": extra.pop("guest_realtime", True),
        "cyclictest": "-q -m -p 90 -i 1000 -l 3000 -h 400",
        "latency": result.to_dict(),
        "verify": extra.pop("verify", {"subject": guest, "verdict": "in place", "findings": []}),
    }


def rtt_json(samples: list[float], *, warnings: tuple[str, ...] = ()) -> dict[str, Any]:
    """What `rtkvm net rtt -f json` prints, built by the real report builder."""
    summary = SockperfSummary("rtt", len(samples), min(samples), 0.0, max(samples), {}, 0, 0, 0)
    report = build_report(
        "guest rt1 -> rt2 (169.254.77.2)", summary, samples, bucket_us=5, warnings=warnings
    )
    data: dict[str, Any] = json.loads(dumps(report))
    return data


def measurement(kind: str, result: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """A MeasurementOut document as `rtkvm cloud measure show ID -f json` prints it."""
    doc: dict[str, Any] = {
        "id": f"m-{kind}",
        "kind": kind,
        "state": "done",
        "project": "demo",
        "server": "i-1",
        "server_name": "rt1",
        "peer": "i-2" if kind == "rtt" else None,
        "peer_name": "rt2" if kind == "rtt" else None,
        "network": "blue" if kind == "rtt" else None,
        "host": "h1",
        "params": {"loops": 3000} if kind == "cyclictest" else {"seconds": 10},
        "result": result,
        "fault": None,
        "rt_waiver": None,
        "created_at": 1.0,
        "started_at": 2.0,
        "finished_at": 3.0,
    }
    return doc | fields


def _rtt_samples(n: int) -> list[float]:
    return [20.0 + (i % 10) for i in range(n - 1)] + [95.0]


def demo() -> Report:
    """The demo: cyclictest in two RT instances, the round trip between them on blue."""
    docs = [
        ("a.json", measurement("cyclictest", saved_cyclictest("rt1", [{3: 2000, 5: 990, 9: 10}]))),
        (
            "b.json",
            measurement(
                "cyclictest",
                saved_cyclictest("rt2", [{4: 500}, {6: 499, 12: 1}]),
                server_name="rt2",
                host="h2",
            ),
        ),
        ("c.json", measurement("rtt", rtt_json(_rtt_samples(2000)))),
    ]
    entries = [e for source, doc in docs for e in load(doc, source)]
    return Report("demo report", tuple(entries), notes=("two RT instances on blue",))


def test_the_three_shapes_are_detected() -> None:
    saved = saved_cyclictest("rt9", [{3: 10}])
    (bare_ct,) = load(saved, "ct.json")
    assert isinstance(bare_ct, CyclictestEntry) and bare_ct.instance == "rt9"
    (latency_only,) = load(saved["latency"], "dir/lat.json")
    assert isinstance(latency_only, CyclictestEntry) and latency_only.instance == "lat"
    (bare_rtt,) = load(rtt_json([10.0, 11.0]), "rtt.json")
    assert isinstance(bare_rtt, RttEntry) and bare_rtt.report is not None
    assert bare_rtt.network is None and bare_rtt.report.samples == 2
    (api,) = load(measurement("rtt", rtt_json([10.0, 11.0])), "m.json")
    assert isinstance(api, RttEntry)
    assert (api.path, api.network, api.host, api.measurement_id) == (
        "rt1 -> rt2",
        "blue",
        "h1",
        "m-rtt",
    )
    many = load([measurement("cyclictest", None, state="queued")] * 2, "list.json")
    assert [e.source for e in many] == ["list.json[0]", "list.json[1]"]


def test_a_round_trip_across_hosts_names_both_hosts() -> None:
    doc = measurement("rtt", rtt_json(_rtt_samples(200)), peer_host="h2", peer_state="done")
    (across,) = load(doc, "x.json")
    (same,) = load(measurement("rtt", rtt_json(_rtt_samples(200))), "y.json")
    assert (across.host, same.host) == ("h1 -> h2", "h1")


def test_rtt_json_reads_back_into_the_same_report() -> None:
    data = rtt_json(_rtt_samples(200), warnings=("clock jumped",))
    report = rtt_report_from_dict(data)
    assert json.loads(dumps(report)) == data
    assert report.percentiles[99.9] == 95.0 and 99.9 in report.unresolved


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"hello": 1}, r"x\.json: not a measurement: expected .*found keys hello"),
        ("text", r"x\.json: not a measurement: expected .*found JSON 'text'"),
        ({"kind": "iperf", "state": "done"}, r"x\.json: measurement kind 'iperf' is neither"),
    ],
)
def test_unknown_shapes_are_refused_naming_the_file(doc: Any, match: str) -> None:
    with pytest.raises(InputError, match=match):
        load(doc, "x.json")


def test_broken_documents_of_a_known_shape_say_what_they_should_be() -> None:
    with pytest.raises(MeasureError, match=r"x\.json: not a round trip saved by `rtkvm net rtt"):
        load({"path": "a", "samples": 3, "histogram": {}}, "x.json")
    with pytest.raises(MeasureError, match=r"x\.json \(result\): not a cyclictest result"):
        load(measurement("cyclictest", {"latency": {}}), "x.json")


def test_text_report_has_the_figures_of_every_measurement() -> None:
    text = render_text(demo())
    lines = text.splitlines()
    assert lines[:2] == ["demo report", "==========="]
    assert "note: two RT instances on blue" in lines
    assert "no warnings" in lines
    rt1 = next(line.split() for line in lines if line.startswith("rt1 "))
    # instance host accel rt-guest state threads samples min avg max p99 p99.9 overflow
    assert rt1 == ["rt1", "h1", "kvm", "yes", "done", "1", "3000", "3", "3.0", "9", "5", "9", "no"]
    rt2 = next(line.split() for line in lines if line.startswith("rt2 "))
    assert rt2[5:10] == ["2", "1000", "4", "5.0", "12"]
    assert rt2[10:] == ["6", "6", "no"]  # both threads merged: 1000 samples resolve p99.9
    assert "n/a[" not in text
    rtt = next(line for line in lines if line.startswith("rt1 -> rt2"))
    assert rtt.split()[3:] == ["blue", "h1", "done", "2000", "20.0", "24.0", "29.0", "29.0", "95.0"]


def test_unresolvable_and_withheld_figures_say_why() -> None:
    docs = [
        measurement("cyclictest", saved_cyclictest("small", [{3: 50}]), server_name="small"),
        saved_cyclictest("over", [{3: 50}], overflows=2),
        measurement("rtt", rtt_json(_rtt_samples(300))),
    ]
    report = Report("t", tuple(e for d in docs for e in load(d, "x.json")))
    text = render_text(report)
    assert "[1] small p99: unresolved at 50 samples (needs at least 100)" in text
    assert "[2] small p99.9: unresolved at 50 samples (needs at least 1000)" in text
    assert "over p99: withheld: samples overflowed the 4 µs histogram" in text
    assert "OVERFLOW" in text.split("round trip")[0]
    assert "rt1 -> rt2 p99.9: unresolved at 300 samples (needs at least 1000)" in text
    data = summarise(report)
    assert data["cyclictest"][0]["figures"]["percentiles_us"] == {"p99": None, "p99.9": None}
    assert data["rtt"][0]["figures"]["percentiles_us"]["p99"] == 29.0


def test_every_warning_is_loud_in_every_output() -> None:
    verify = {
        "subject": "rt3",
        "verdict": "misplaced",
        "findings": [{"id": "thread.affinity", "severity": "error", "status": "fail"}],
    }
    docs = [
        measurement(
            "cyclictest",
            saved_cyclictest(
                "rt3", [{30: 100, 80: 1}], accel="tcg", guest_realtime=False, verify=verify
            ),
            server_name="rt3",
            rt_waiver="no isolated CPUs, accepted for the demo",
        ),
        measurement("cyclictest", None, state="error", server_name="rt4", fault="guest hung"),
        measurement("rtt", rtt_json([20.0, 21.0], warnings=("2 dropped messages",))),
    ]
    report = Report("t", tuple(e for d in docs for e in load(d, "x.json")))
    expected = [
        "rt3: measured under TCG (emulation): these latencies are meaningless for real time",
        "rt3: host h1 was waived by an admin: no isolated CPUs, accepted for the demo; "
        "nothing is assured",
        "rt3: the guest kernel is not real-time (guest_realtime false)",
        "rt3: the in-guest verify says misplaced (failed: thread.affinity)",
        "rt3: max 80 µs is above the 40 µs target",
        "rt4: measurement m-cyclictest failed: guest hung",
        "rt1 -> rt2: sockperf: 2 dropped messages",
    ]
    text, markdown, data = render_text(report), render_markdown(report), summarise(report)
    assert "!!! 7 WARNING(S): read these before the figures" in text
    for warning in expected:
        assert f"!!! {warning}" in text
        assert f"> - **WARNING** {warning}" in markdown
        assert any(w.startswith(warning) for w in data["warnings"])
    rt4 = next(line.split() for line in text.splitlines() if line.startswith("rt4 "))
    assert rt4[:5] == ["rt4", "h1", "-", "-", "error"]
    assert "  rt4: error: guest hung" in text
    svg = render_pictures(report)["cyclictest-rt3.svg"]
    assert TCG in _texts(svg)


TCG = "measured under TCG (emulation): these latencies are meaningless for real time"


def test_markdown_has_the_tables_and_links_the_pictures() -> None:
    markdown = render_markdown(demo())
    assert markdown.startswith("# demo report\n")
    assert "| INSTANCE | HOST | ACCEL |" in markdown
    assert "| rt1 | h1 | kvm | yes | done | 1 | 3000 | 3 | 3.0 | 9 | 5 | 9 | no |" in markdown
    assert "| rt1 -> rt2 | blue | h1 | done | 2000 |" in markdown
    for name in ("cyclictest-rt1.svg", "cyclictest-rt2.svg", "rtt-rt1-rt2.svg"):
        assert f"]({name})" in markdown


def _texts(svg: str) -> list[str]:
    root = etree.fromstring(svg.encode())
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def _bars(svg: str) -> list[Any]:
    root = etree.fromstring(svg.encode())
    return [r for r in root.iter(f"{SVG}rect") if r.get("fill") != "white"]


def test_pictures_one_per_measurement_with_their_bars_and_markers() -> None:
    pictures = render_pictures(demo())
    assert sorted(pictures) == ["cyclictest-rt1.svg", "cyclictest-rt2.svg", "rtt-rt1-rt2.svg"]
    assert len(_bars(pictures["cyclictest-rt1.svg"])) == 3
    assert len(_bars(pictures["cyclictest-rt2.svg"])) == 3  # 4 (thread 0), 6 and 12 (thread 1)
    rtt = pictures["rtt-rt1-rt2.svg"]
    assert len(_bars(rtt)) == 3  # 5 µs buckets: 20-24, 25-29, 95
    texts = _texts(rtt)
    assert "round trip rt1 -> rt2 on blue" in texts
    assert {"p99 29.0 µs", "p99.9 29.0 µs", "max 95.0 µs"} <= set(texts)


def test_rtt_picture_leaves_out_unresolved_percentiles_and_groups_wide_histograms() -> None:
    samples = [float(i) for i in range(0, 5000, 7)]
    (entry,) = load(rtt_json(samples), "r.json")
    svg = render_pictures(Report("t", (entry,)))["rtt-guest-rt1-rt2-169.254.77.2.svg"]
    assert len(_bars(svg)) == 200  # 1000 buckets of 5 µs in 200 columns of 25 µs
    texts = _texts(svg)
    assert not any(t.startswith("p99.9") for t in texts)  # 715 samples do not resolve it
    assert any(t.startswith("p99 ") for t in texts)


def test_doctor_verdict_and_failed_checks_head_the_report() -> None:
    doctor = doctor_from_dict(
        {
            "subject": "/",
            "verdict": "not ready",
            "counts": {},
            "notes": [],
            "findings": [
                {"id": "kernel.rt", "severity": "error", "status": "fail", "message": "no RT"},
                {"id": "smt", "severity": "warning", "status": "fail", "message": "SMT on"},
                {"id": "ok", "severity": "error", "status": "pass", "message": "fine"},
            ],
        }
    )
    assert not doctor.ok
    report = Report("t", demo().entries, doctor=doctor)
    text = render_text(report)
    assert (
        "host doctor: /: not ready\n  [fail] error kernel.rt: no RT\n  [fail] warning smt: SMT on"
        in text
    )
    assert "!!! host doctor: / is not ready" in text
    assert summarise(report)["doctor"]["failed"] == [
        "[fail] error kernel.rt: no RT",
        "[fail] warning smt: SMT on",
    ]
    with pytest.raises(InputError, match=r"d\.json: not the output of `rtkvm host doctor"):
        doctor_from_dict({"verdict": "ready"}, source="d.json")


def test_the_capture_with_overflows_renders_from_the_real_parser() -> None:
    result = parse((DATA / "host_2threads.txt").read_text())
    doc = {"guest": "cap", "accel": "kvm", "latency": result.to_dict()}
    report = Report("t", tuple(load(doc, "cap.json")))
    assert "cap: " in render_text(report) and "overflowed" in render_text(report)
    etree.fromstring(render_pictures(report)["cyclictest-cap.svg"].encode())


def test_many_notes_stay_inside_the_picture() -> None:
    notes = tuple(f"note {i}" for i in range(6))
    svg = render_chart([[1, 2]], column_us=5, title="t", summary="s", notes=notes)
    root = etree.fromstring(svg.encode())
    height = float(root.get("height", "0"))
    ys = [
        float(t.get("y", "0"))
        for t in root.iter(f"{SVG}text")
        if "".join(t.itertext()).startswith("note")
    ]
    assert len(ys) == 6 and max(ys) < height
