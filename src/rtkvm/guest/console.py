"""Read the guest image's markers from a serial console log file.

The guest's /init (image.toml) prints ``RTKVM-READY ...``, then
``RTKVM-CYCLICTEST-BEGIN args=...``, cyclictest's output and
``RTKVM-CYCLICTEST-END rc=N``, and ``RTKVM-POWEROFF`` when asked to power
off. This module waits (bounded) for a marker in the part of the log written
after a given offset, and cuts out the cyclictest block. It must not parse
cyclictest's output (measure.cyclictest does) nor talk to libvirt.
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
_END_RC = re.compile(r"RTKVM-CYCLICTEST-END rc=(\d+)")


@dataclass(frozen=True)
class Ready:
    """What the guest said when it became ready."""

    line: str
    realtime: bool
    seconds: float


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


def wait_for(
    path: Path,
    marker: str,
    *,
    offset: int = 0,
    timeout: float = 60.0,
    alive: Callable[[], bool] = lambda: True,
    poll: float = 0.2,
) -> tuple[str, float]:
    """(log text after ``offset``, seconds waited) once ``marker`` is in it.

    Raises GuestError with the log's last lines on timeout, or when ``alive``
    says the guest stopped before printing the marker.
    """
    started = time.monotonic()
    while True:
        text = read_from(path, offset)
        if marker in text:
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
            return Ready(line, "realtime=1" in line.split(), seconds)
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


def _tail(path: Path, text: str, lines: int = 5) -> str:
    last = [line.strip() for line in text.strip().splitlines()[-lines:]]
    if not last:
        return f"{path} is empty"
    return f"last lines of {path}: " + " | ".join(last)
