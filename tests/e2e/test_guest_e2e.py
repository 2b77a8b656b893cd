"""End to end on this machine: runtime up, image build, RT guest on qemu:///system.

Builds the PREEMPT_RT image (twice: the second from the cache must give the
same bytes), creates an RT guest from the design (vCPU 0 housekeeping on
pCPU 0 with the emulator, vCPU 1 SCHED_FIFO on pCPU 1), boots it through
libvirt, verifies the threads from /proc, runs cyclictest in it, deletes it.
Everything lives in a temporary directory that is removed at the end, and the
domain is undefined even when a step fails.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rtkvm.cli.main import cli
from rtkvm.domain.spec import VCPU_PRIORITY_DEFAULT
from rtkvm.guest import lifecycle

pytestmark = pytest.mark.e2e

NAME = f"rtkvm-e2e-{os.getpid()}"  # unique: several test runs may share the machine
_T0 = time.monotonic()


def _require_machine() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (libvirtd, QEMU, /proc of root processes)")
    for tool in ("libvirtd", "virtlogd", "qemu-system-x86_64", "apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: run 'make setup'")


def _run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _remove_domain() -> None:
    with lifecycle.connect() as conn:
        for dom in conn.listAllDomains(0):
            if dom.name() == NAME:
                if dom.isActive():
                    dom.destroy()
                dom.undefine()


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    _require_machine()
    up = _run("runtime", "up")
    assert up.exit_code == 0, up.output
    tmp = Path(tempfile.mkdtemp(prefix="rtkvm-e2e-"))
    try:
        yield tmp
    finally:
        _remove_domain()
        shutil.rmtree(tmp)


def _say(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """Print a figure for the CI log, past pytest's capture."""
    with capsys.disabled():
        print(f"\n[e2e {time.monotonic() - _T0:6.1f}s] {line}", flush=True)


def test_rt_guest_end_to_end(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache, image, guests = workdir / "cache", workdir / "image", workdir / "guests"
    probe = workdir / "kvm-probe.json"

    first = _run("image", "build", "--cache", str(cache), "--output", str(image))
    assert first.exit_code == 0, first.output
    again = _run("image", "build", "--cache", str(cache), "--output", str(workdir / "image2"))
    assert again.exit_code == 0, again.output
    sha = [line.split()[1] for line in first.output.splitlines() if line.startswith("sha256")]
    assert sha and f"sha256     {sha[0]}" in again.output  # reproducible from the cache
    assert "none (all cached)" in again.output
    timing = [line for line in first.output.splitlines() if line.startswith("built in")]
    _say(capsys, f"image build: {timing[0].split(None, 2)[2]}, sha256 {sha[0]}")
    manifest = json.loads((image / "manifest.json").read_text())
    assert manifest["kernel_release"].endswith("-rt-amd64")

    created = _run(
        "guest", "create", NAME,
        "--image", str(image), "--guest-dir", str(guests), "--probe-cache", str(probe),
        "--housekeeping", "0", "--rt-cpus", "1",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    accel = json.loads(probe.read_text())
    _say(capsys, f"KVM probe: {accel['detail']}")

    listed = _run("guest", "list", "--format", "json")
    (mine,) = [g for g in json.loads(listed.output) if g["name"] == NAME]
    assert mine["state"] == "shut off" and mine["vcpus"] == 2

    started = _run("guest", "start", NAME, "--timeout", "120")
    assert started.exit_code == 0, started.output
    assert "realtime=1" in started.output  # the PREEMPT_RT guest kernel is running
    _say(capsys, started.output.strip())

    verified = _run("guest", "verify", NAME, "--format", "json")
    report = json.loads(verified.output)
    by_id = {f["id"]: f for f in report["findings"]}
    assert verified.exit_code == 0, verified.output
    # what the design gives RT vCPUs by default, as the host's /proc shows it
    assert by_id["guest.vcpu1.sched"]["observed"] == f"fifo/{VCPU_PRIORITY_DEFAULT}"
    assert by_id["guest.vcpu0.sched"]["observed"] == "other/0"
    assert by_id["guest.vcpu1.affinity"]["observed"] == "1"
    assert by_id["guest.vcpu0.affinity"]["observed"] == "0"
    assert by_id["guest.emulator.affinity"]["status"] == "pass"

    assert _run("guest", "stop", NAME).exit_code == 0
    saved = workdir / "measure.json"
    measured = _run(
        "guest", "measure", NAME, "--loops", "2000", "--interval", "1000",
        "--buckets", "400", "--timeout", "240", "--save", str(saved),
    )  # fmt: skip
    assert measured.exit_code == 0, measured.output
    data = json.loads(saved.read_text())
    (thread,) = data["latency"]["threads"]
    assert thread["samples"] == 2000
    assert 0 < thread["min_us"] <= thread["avg_us"] <= thread["max_us"]
    assert sum(r["counts"][0] for r in data["latency"]["histogram"]) == thread["in_histogram"]
    if thread["overflows"]:
        assert thread["percentiles_us"] is None
    else:
        assert thread["percentiles_us"]["p99"] <= thread["max_us"]
    assert data["verify"]["verdict"] == "in effect"
    _say(
        capsys,
        f"cyclictest under {data['accel']} (boot {data['boot_seconds']}s): "
        f"min {thread['min_us']} avg {thread['avg_us']} max {thread['max_us']} us, "
        f"{thread['overflows']} of {thread['samples']} samples over the "
        f"{data['latency']['buckets']} us histogram, percentiles {thread['percentiles_us']}",
    )

    deleted = _run("guest", "delete", NAME)
    assert deleted.exit_code == 0, deleted.output
    with lifecycle.connect() as conn:
        assert NAME not in {d.name() for d in conn.listAllDomains(0)}
    assert not any(guests.iterdir())  # the serial log is gone with the guest
