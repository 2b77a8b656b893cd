"""Read the guest image's markers from a serial console log file.

The guest's /init (image.toml) prints ``RTKVM-READY ...``, then
``RTKVM-CYCLICTEST-BEGIN args=...``, cyclictest's output and
``RTKVM-CYCLICTEST-END rc=N``, and ``RTKVM-POWEROFF`` when asked to power
off; on networked boots also ``RTKVM-NET ip=...``, ``RTKVM-SOCKPERF-SERVER
rc=N``, ``RTKVM-WAIT ok|timeout`` and BEGIN/END blocks for ping, sockperf and
sockperf's full log (or its histogram). This module waits (bounded) for a marker in the part of
the log written after a given offset, cuts out marked blocks, and reads a
log's end as printable text for a user (:func:`printable_tail`: the guest is
the tenant's, its escape sequences must not reach anyone's terminal). It must not
parse cyclictest's or sockperf's output (measure.cyclictest, net.rtt do) nor
talk to libvirt.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rtkvm.errors import GuestError

READY = "RTKVM-READY"
BEGIN = "RTKVM-CYCLICTEST-BEGIN"
END = "RTKVM-CYCLICTEST-END"
POWEROFF = "RTKVM-POWEROFF"
_REALTIME = re.compile(r"\brealtime=(\d)")
_END_RC = re.compile(r"RTKVM-CYCLICTEST-END rc=(\d+)")
NET = "RTKVM-NET"
NET_FAILED = "RTKVM-NET-FAILED"
SOCKPERF_SERVER = "RTKVM-SOCKPERF-SERVER"
WAIT = "RTKVM-WAIT"
PING_END = "RTKVM-PING-END"
SOCKPERF_END = "RTKVM-SOCKPERF-END"
FULLLOG_END = "RTKVM-FULLLOG-END"
RTTHIST_END = "RTKVM-RTTHIST-END"


@dataclass(frozen=True)
class Ready:
    """What the guest said when it became ready."""

    line: str
    realtime: bool
    seconds: float


_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[0-~])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (newlines and
    tabs stay; a CR before a newline goes)."""
    return _CONTROL.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n")))


def printable_tail(path: Path, limit: int) -> tuple[str, bool]:
    """(the log's end as printable text, at most ``limit`` characters; whether it was cut).
    A log that does not exist yet is empty."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            start = max(size - 4 * limit, 0)  # room for what the cleaning drops
            handle.seek(start)
            raw = handle.read()
    except FileNotFoundError:
        return "", False
    text = printable(raw.decode("utf-8", "replace"))
    cut = start > 0 or len(text) > limit
    if len(text) > limit:
        text = text[-limit:]
    if cut and "\n" in text:
        text = text[text.index("\n") + 1 :]  # from a whole line
    return text, cut


def log_size(path: Path) -> int:
    """Current size of a log (0 when it does not exist yet): the offset to read from."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def has_line(text: str, marker: str) -> bool:
    """Whether ``marker`` is in ``text`` with its line ended."""
    index = text.find(marker)
    return index >= 0 and "\n" in text[index:]


def wait_for(
    path: Path,
    marker: str,
    *,
    offset: int = 0,
    timeout: float = 60.0,
    alive: Callable[[], bool] = lambda: True,
    poll: float = 0.2,
) -> tuple[str, float]:
    """(log text after ``offset``, seconds waited) once ``marker``'s line is whole.

    A serial console writes a byte at a time, and under TCG a line can stop
    half-way for a while: the marker counts only once the newline after it is
    in the log, so a caller never parses ``realtime=`` cut short. A guest that
    stopped is taken with what it wrote. Raises GuestError with the log's last
    lines on timeout, or when ``alive`` says the guest stopped before printing
    the marker.
    """
    started = time.monotonic()
    while True:
        text = read_from(path, offset)
        if has_line(text, marker):
            return text, time.monotonic() - started
        if not alive():
            text = read_from(path, offset)
            if marker in text:
                return text, time.monotonic() - started
            raise GuestError(f"the guest stopped before printing {marker}; {_tail(path, text)}")
        if time.monotonic() - started > timeout:
            raise GuestError(
                f"no {marker} from the guest within {timeout:.0f}s; {_tail(path, text)}"
            )
        time.sleep(poll)


def parse_ready(text: str, seconds: float) -> Ready:
    for line in text.splitlines():
        index = line.find(READY)
        if index >= 0:
            line = line[index:].strip()
            flag = _REALTIME.search(line)
            return Ready(line, flag is not None and flag.group(1) == "1", seconds)
    raise GuestError(f"no {READY} line in the console text")


def cyclictest_block(text: str) -> tuple[str, int]:
    """(cyclictest's output, its exit status) between the BEGIN and END markers."""
    begin = text.find(BEGIN)
    if begin < 0:
        raise GuestError(f"no {BEGIN} on the console: was the guest started with rtkvm.cyclictest?")
    match = _END_RC.search(text, begin)
    if match is None:
        raise GuestError(f"cyclictest did not finish ({END} missing)")
    body = text[text.index("\n", begin) + 1 : match.start()]
    return body, int(match.group(1))


def marker_line(text: str, marker: str) -> str | None:
    """What follows ``marker`` (and a space) on the first line that has it, or None."""
    pattern = re.compile(re.escape(marker) + r"(?:\s+(.*))?$")
    for line in text.splitlines():
        index = line.find(marker)
        if index < 0:
            continue
        match = pattern.match(line[index:].rstrip())
        if match is not None:
            return match.group(1) or ""
    return None


def marked_block(text: str, name: str) -> tuple[str, int | None]:
    """(output, exit status or None) between ``RTKVM-<name>-BEGIN`` and ``RTKVM-<name>-END``."""
    begin_marker, end_marker = f"RTKVM-{name}-BEGIN", f"RTKVM-{name}-END"
    begin = text.find(begin_marker)
    if begin < 0:
        raise GuestError(f"no {begin_marker} on the console: the guest was not asked to run it")
    match = re.compile(re.escape(end_marker) + r"(?: rc=(\d+))?").search(text, begin)
    if match is None:
        raise GuestError(f"{name.lower()} did not finish in the guest ({end_marker} missing)")
    newline = text.find("\n", begin)
    body = text[newline + 1 : match.start()] if 0 <= newline < match.start() else ""
    return body, int(match.group(1)) if match.group(1) is not None else None


def _tail(path: Path, text: str, lines: int = 5) -> str:
    last = [line.strip() for line in text.strip().splitlines()[-lines:]]
    if not last:
        return f"{path} is empty"
    return f"last lines of {path}: " + " | ".join(last)
