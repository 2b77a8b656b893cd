"""`rtkvm report build`: files in, report.txt/md/json and pictures out, bad files named."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from rtkvm.cli.main import main
from rtkvm.measure.cyclictest import parse
from rtkvm.net.rtt import SockperfSummary, build_report
from rtkvm.serialize import dumps

SVG = "{http://www.w3.org/2000/svg}"


def _cyclictest_output(counts: dict[int, int]) -> str:
    buckets = max(counts) + 1
    rows = [f"{us:06d} {counts.get(us, 0):06d}" for us in range(buckets)]
    avg = sum(us * n for us, n in counts.items()) // sum(counts.values())
    summary = [
        f"# Total: {sum(counts.values()):09d}",
        f"# Min Latencies: {min(counts):05d}",
        f"# Avg Latencies: {avg:05d}",
        f"# Max Latencies: {max(counts):05d}",
        "# Histogram Overflows: 00000",
    ]
    return "\n".join(["# Histogram", *rows, *summary])


def _saved(guest: str, counts: dict[int, int], accel: str = "kvm") -> dict[str, Any]:
    return {
        "guest": guest,
        "accel": accel,
        "boot_seconds": 3.0,
        "run_seconds": 3.0,
        "guest_realtime": True,
        "cyclictest": "-q -h 400",
        "latency": parse(_cyclictest_output(counts)).to_dict(),
        "verify": {"subject": guest, "verdict": "in place", "findings": []},
    }


def _rtt(samples: list[float]) -> dict[str, Any]:
    summary = SockperfSummary("rtt", len(samples), min(samples), 0.0, max(samples), {}, 0, 0, 0)
    data: dict[str, Any] = json.loads(dumps(build_report("guest rt1 -> rt2", summary, samples)))
    return data


def _measurement(kind: str, name: str, result: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": f"m-{name}",
        "kind": kind,
        "state": "done",
        "project": "demo",
        "server": f"i-{name}",
        "server_name": name,
        "peer": "i-rt2" if kind == "rtt" else None,
        "peer_name": "rt2" if kind == "rtt" else None,
        "network": "blue" if kind == "rtt" else None,
        "host": "h1",
        "params": {},
        "result": result,
        "fault": None,
        "rt_waiver": None,
        "created_at": 1.0,
        "started_at": 2.0,
        "finished_at": 3.0,
    } | extra


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


def _write(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_build_writes_the_report_and_the_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [
        _write(
            tmp_path / "rt1.json",
            _measurement("cyclictest", "rt1", _saved("rt1", {3: 900, 7: 100})),
        ),
        _write(tmp_path / "rt2.json", _saved("rt2", {5: 1000}, accel="tcg")),
        _write(
            tmp_path / "rtt.json",
            _measurement("rtt", "rt1", _rtt([20.0 + i % 7 for i in range(1000)])),
        ),
    ]
    doctor = {
        "subject": "/",
        "verdict": "ready",
        "counts": {},
        "notes": [],
        "findings": [{"id": "smt", "severity": "warning", "status": "fail", "message": "SMT on"}],
    }
    out_dir = tmp_path / "out"
    argv = ["report", "build", *files, "-o", str(out_dir), "--title", "demo"]
    argv += ["--doctor", _write(tmp_path / "doctor.json", doctor)]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == [
        "cyclictest-rt1.svg",
        "cyclictest-rt2.svg",
        "report.html",
        "report.json",
        "report.md",
        "report.txt",
        "rtt-rt1-rt2.svg",
    ]
    text = (out_dir / "report.txt").read_text()
    assert out.startswith(text)
    assert out.splitlines()[-1].startswith(f"report: {out_dir / 'report.txt'}")
    assert str(out_dir / "rtt-rt1-rt2.svg") in out.splitlines()[-1]
    assert "host doctor: /: ready\n  [fail] warning smt: SMT on" in text
    assert "!!! 1 WARNING(S)" in text and "rt2: measured under TCG (emulation)" in text
    assert "rt1 -> rt2  blue" in text
    summary = json.loads((out_dir / "report.json").read_text())
    assert [m["instance"] for m in summary["cyclictest"]] == ["rt1", "rt2"]
    assert summary["cyclictest"][0]["figures"]["percentiles_us"] == {"p99": 7, "p99.9": 7}
    assert summary["rtt"][0]["figures"]["samples"] == 1000
    assert "![rt1 -> rt2](rtt-rt1-rt2.svg)" in (out_dir / "report.md").read_text()
    for svg in out_dir.glob("*.svg"):
        etree.parse(str(svg))
    page = etree.parse(str(out_dir / "report.html"), etree.HTMLParser())
    assert page.findtext(".//h1") == "demo"
    assert len(page.findall(".//figure")) == 3  # the pictures are inline: one file to send
    assert "rt2: measured under TCG" in "".join(page.find(".//div[@class='warn']").itertext())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"missing\.json: cannot read it \(No such file or directory\)"),
        ("{not json", r"bad\.json: not JSON \(.*\); give the output of a `-f json` command"),
        ('{"hello": 1}', r"bad\.json: not a measurement: expected a measurement"),
        (
            '{"kind": "rtt", "state": "done", "result": {"path": 1}}',
            r"bad\.json \(result\): not a round trip",
        ),
    ],
)
def test_bad_input_is_named_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / ("missing.json" if content is None else "bad.json")
    if content is not None:
        path.write_text(content)
    code, _, err = _run(["report", "build", str(path), "-o", str(tmp_path / "out")], capsys)
    assert code == 2
    assert err.startswith("rtkvm: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_a_bad_doctor_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = _write(tmp_path / "rt1.json", _saved("rt1", {3: 10}))
    doctor = _write(tmp_path / "doctor.json", {"verdict": "ready"})
    code, _, err = _run(
        ["report", "build", ok, "-o", str(tmp_path / "o"), "--doctor", doctor], capsys
    )
    assert code == 2 and "doctor.json: not the output of `rtkvm host doctor -f json`" in err


QUALIFIED = {
    "id": "0b9c9a4e-32a1-4d43-9a6e-0a6f4f1a2b3c",
    "host": "node1",
    "state": "passed",
    "started_at": 1000.0,
    "finished_at": 1100.0,
    "free_pcpus": "1-2",
    "held_pcpus": "",
    "networks": ["blue"],
    "max_latency_us": None,
    "rt_waiver": None,
    "current": True,
    "measurements": [],
    "proof": {
        "pcpus": [{"pcpu": 1, "worst_us": 14.0}, {"pcpu": 2, "worst_us": 23.0}],
        "networks": [{"network": "blue", "samples": 5000, "p99_99_us": 80.0, "max_us": 88.25}],
        "worst_us": 23.0,
        "emulated": True,
    },
    "fault": None,
}


def test_a_host_qualification_heads_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = _write(tmp_path / "rt1.json", _saved("rt1", {3: 10}))
    proof = _write(tmp_path / "qualify.json", QUALIFIED)
    out = tmp_path / "o"
    code, text, _ = _run(["report", "build", ok, "-o", str(out), "--qualification", proof], capsys)
    assert code == 0
    line = (
        "host qualification: node1: passed, worst 23 µs on free RT pCPUs 1-2; "
        "blue p99.99 80.0 µs, max 88.25 µs (emulated)"
    )
    assert line in text
    assert "host qualification of node1: measured under TCG" in text
    summary = json.loads((out / "report.json").read_text())
    assert summary["qualifications"][0]["worst_us"] == 23.0
    assert line in (out / "report.md").read_text()
    bad = _write(tmp_path / "bad.json", {"host": "node1"})
    code, _, err = _run(["report", "build", ok, "-o", str(out), "--qualification", bad], capsys)
    assert code == 2 and "bad.json: not a host qualification" in err
