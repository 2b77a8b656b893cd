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
