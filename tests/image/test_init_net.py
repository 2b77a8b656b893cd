"""The guest /init's network steps: its command line parsing run by a real shell, and
sockperf with every library it links in the image."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rtkvm.guest.netcmd import GuestNetRun
from rtkvm.image.build import build_image, load_image_spec
from rtkvm.image.cpio import read_newc
from rtkvm.net.rttrun import client_args

from .test_build import FakeApt


def _helpers() -> str:
    """The /init's ``arg`` and ``quoted`` functions, reading a given file, not /proc/cmdline."""
    lines = [x for x in load_image_spec().init.splitlines() if x.startswith(("arg()", "quoted()"))]
    assert len(lines) == 2, lines
    return "\n".join(line.replace("/proc/cmdline", '"$CMDLINE"') for line in lines)


def _read(cmdline: str, tmp_path: Path, *calls: str) -> list[str]:
    path = tmp_path / "cmdline"
    path.write_text(cmdline + "\n")
    script = _helpers() + "\n" + "\n".join(f'echo "[$({c})]"' for c in calls)
    done = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, check=True, env={"CMDLINE": str(path)}
    )
    return [line[1:-1] for line in done.stdout.splitlines()]


def test_init_reads_back_what_netcmd_writes(tmp_path: Path) -> None:
    argv = client_args("10.77.0.12", 11111, seconds=3, mps=1000, msg_size=64, full_log="/tmp/r.csv")
    run = GuestNetRun(
        address="10.77.0.11/24",
        sockperf_server="10.77.0.11",
        wait_for="10.77.0.12",
        ping="10.77.0.13",
        sockperf_client=tuple(argv),
    )
    cmdline = f"console=ttyS0 quiet isolcpus=1 {run.words()} rtkvm.after=poweroff"
    got = _read(
        cmdline, tmp_path, "arg ip", "arg sockperf_server", "arg wait", "arg ping",
        "quoted sockperf", "arg cyclictest",
    )  # fmt: skip
    assert got[:4] == ["10.77.0.11/24", "10.77.0.11", "10.77.0.12", "10.77.0.13"]
    assert got[4] == " ".join(argv[1:])
    assert got[5] == ""  # not asked: nothing runs


def test_init_finds_the_full_log_in_the_client_arguments() -> None:
    init = load_image_spec().init
    (line,) = [x for x in init.splitlines() if "--full-log" in x]
    sed = re.search(r"sed -n '([^']*)'", line)
    assert sed is not None
    words = " ping-pong -i 10.77.0.12 --full-rtt --full-log /tmp/rtkvm-rtt.csv "
    done = subprocess.run(
        ["sed", "-n", sed.group(1)], input=words, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "/tmp/rtkvm-rtt.csv"


def test_sockperf_and_its_libraries_are_in_the_initramfs(tmp_path: Path) -> None:
    built = build_image(tmp_path / "c", tmp_path / "o", run=FakeApt())
    members = {p for p, _, _ in read_newc(gzip.decompress(built.initramfs.read_bytes()))}
    assert "usr/bin/sockperf" in members
    for lib in ("libstdc++.so.6", "libgcc_s.so.1", "libm.so.6", "libdl.so.2", "libc.so.6"):
        assert f"lib/x86_64-linux-gnu/{lib}" in members


def test_the_image_holds_every_library_the_host_sockperf_links() -> None:
    """ldd of the host's sockperf (the same Debian package) against image.toml."""
    if shutil.which("sockperf") is None or shutil.which("ldd") is None:
        pytest.skip("sockperf or ldd is not installed here")
    done = subprocess.run(
        ["ldd", shutil.which("sockperf") or ""], capture_output=True, text=True, check=True
    )
    needed = {
        Path(m.group(1)).name for m in re.finditer(r"^\s*(\S+\.so[.\d]*)\s", done.stdout, re.M)
    }
    needed.discard("linux-vdso.so.1")
    shipped = {Path(f.dst).name for f in load_image_spec().files}
    assert needed and needed <= shipped, needed - shipped


def _print_section(init: str) -> str:
    """The /init's lines that print a sockperf client's full log (after it ran)."""
    lines = init.splitlines()
    start = next(i for i, x in enumerate(lines) if "--full-log" in x)
    end = next(i for i in range(start, len(lines)) if lines[i] == "  fi")
    return "\n".join(lines[start : end + 1])


@pytest.mark.parametrize("hist", [True, False])
def test_init_prints_the_full_log_or_its_histogram_as_asked(tmp_path: Path, hist: bool) -> None:
    """Run by a real shell and this host's awk (the guest's is busybox's); the log is a real
    sockperf run of 549 samples."""
    spec = load_image_spec()
    program = tmp_path / "rtthist.awk"
    program.write_text(spec.rtt_histogram_awk)
    log = Path(__file__).parents[1] / "net" / "data" / "sockperf_full.csv"
    run = GuestNetRun(sockperf_client=("ping-pong", "--full-log", str(log)), rtt_histogram=hist)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(f"console=ttyS0 {run.words()}\n")
    section = _print_section(spec.init).replace("/proc/cmdline", '"$CMDLINE"')
    section = section.replace("/etc/rtkvm/rtthist.awk", str(program))
    done = subprocess.run(
        ["sh", "-c", section], capture_output=True, text=True, check=True,
        env={"CMDLINE": str(cmdline), "args": f"ping-pong --full-log {log}",
             "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    out = done.stdout.splitlines()
    if hist:
        assert out[0] == "RTKVM-RTTHIST-BEGIN" and out[-1] == "RTKVM-RTTHIST-END rc=0"
        assert out[1] == "unit_us 0.1"
        assert sum(int(line.split()[1]) for line in out[2:-1]) == 549
    else:
        assert out[0] == "RTKVM-FULLLOG-BEGIN" and out[-1] == "RTKVM-FULLLOG-END"
        assert "\n".join(out[1:-1]) + "\n" == log.read_text()
