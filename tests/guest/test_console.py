"""Console markers: waiting, timeouts, the cyclictest block."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtkvm.errors import GuestError
from rtkvm.guest.console import cyclictest_block, has_line, log_size, parse_ready, wait_for

LOG = (
    "SeaBIOS\x1bc\x1b[2JRTKVM-READY kernel=6.1.0-56-rt-amd64 realtime=1 cpus=2\n"
    "RTKVM-CYCLICTEST-BEGIN args=-m -q\n# Histogram\n000000 000001\n"
    "RTKVM-CYCLICTEST-END rc=0\n"
)


def test_wait_for_reads_after_the_offset(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    log.write_text("old RTKVM-READY\n")
    offset = log_size(log)
    with log.open("a") as f:
        f.write(LOG)
    text, _ = wait_for(log, "RTKVM-CYCLICTEST-END", offset=offset, timeout=1)
    assert not text.startswith("old")
    ready = parse_ready(text, 1.5)
    assert ready.realtime and ready.line.startswith("RTKVM-READY kernel=6.1.0-56-rt-amd64")


def test_timeout_names_the_marker_and_shows_the_tail(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    log.write_text("Booting from ROM..\n")
    with pytest.raises(GuestError, match=r"RTKVM-READY.*Booting from ROM"):
        wait_for(log, "RTKVM-READY", timeout=0.3, poll=0.05)


def test_guest_that_stopped_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(GuestError, match="stopped before"):
        wait_for(tmp_path / "none.log", "RTKVM-READY", timeout=30, alive=lambda: False)


def test_cyclictest_block() -> None:
    body, rc = cyclictest_block(LOG)
    assert rc == 0 and body == "# Histogram\n000000 000001\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [("RTKVM-READY\n", "BEGIN"), ("RTKVM-CYCLICTEST-BEGIN x\n# Histogram\n", "did not finish")],
)
def test_incomplete_block(text: str, message: str) -> None:
    with pytest.raises(GuestError, match=message):
        cyclictest_block(text)


def test_not_realtime_kernel() -> None:
    assert not parse_ready("RTKVM-READY kernel=6.1 realtime=0 cpus=2\n", 1).realtime


def test_a_marker_counts_only_once_its_line_is_whole(tmp_path: Path) -> None:
    """The serial console writes byte by byte: a half-written READY is not ready yet."""
    log = tmp_path / "s.log"
    log.write_text("RTKVM-READY kernel=6.1.0-57-rt-amd64 real")
    assert not has_line(log.read_text(), "RTKVM-READY")
    with pytest.raises(GuestError, match="within"):
        wait_for(log, "RTKVM-READY", timeout=0.3, poll=0.05)
    with log.open("a") as f:
        f.write("time=1 cpus=2\r\n")
    text, _ = wait_for(log, "RTKVM-READY", timeout=1, poll=0.05)
    assert parse_ready(text, 1).realtime


def test_a_guest_that_stopped_mid_line_is_taken_with_what_it_wrote(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    log.write_text("RTKVM-CYCLICTEST-END rc=0")
    text, _ = wait_for(log, "RTKVM-CYCLICTEST-END", timeout=5, alive=lambda: False)
    assert text.endswith("rc=0")


def test_realtime_flag_read_beside_interleaved_kernel_text() -> None:
    line = "RTKVM-READY kernel=6.1.0-57-rt-amd64 realtime=1[    2.1] random: crng init done\n"
    assert parse_ready(line, 1).realtime
    assert not parse_ready("RTKVM-READY kernel=6.1 realtime= cpus=2\n", 1).realtime
