"""Markers of networked guest runs on the serial console."""

from __future__ import annotations

import pytest

from rtkvm.errors import GuestError
from rtkvm.guest import console

LOG = """\
[    0.000000] Linux version 6.1.0-56-rt-amd64
RTKVM-READY kernel=6.1.0-56-rt-amd64 realtime=1 cpus=2
RTKVM-NET ip=10.77.0.13/24
RTKVM-WAIT ok
RTKVM-PING-BEGIN target=10.77.0.12
PING 10.77.0.12 (10.77.0.12): 56 data bytes

--- 10.77.0.12 ping statistics ---
3 packets transmitted, 0 packets received, 100% packet loss
RTKVM-PING-END rc=1
RTKVM-FULLLOG-BEGIN
1, 0.1, 0.2, 1037.9
RTKVM-FULLLOG-END
"""


def test_marker_line_gives_the_rest_of_the_line() -> None:
    assert console.marker_line(LOG, console.NET) == "ip=10.77.0.13/24"
    assert console.marker_line(LOG, console.WAIT) == "ok"
    assert console.marker_line(LOG, console.NET_FAILED) is None
    assert console.marker_line(LOG, console.SOCKPERF_SERVER) is None


def test_a_marker_is_not_the_prefix_of_another() -> None:
    text = "RTKVM-NET-FAILED no eth0 or bad address 10.0.0.1/24\n"
    assert console.marker_line(text, console.NET) is None
    assert console.marker_line(text, console.NET_FAILED) == "no eth0 or bad address 10.0.0.1/24"


def test_marked_blocks_with_and_without_exit_status() -> None:
    body, rc = console.marked_block(LOG, "PING")
    assert rc == 1 and body.startswith("PING 10.77.0.12") and "0 packets received" in body
    log, none = console.marked_block(LOG, "FULLLOG")
    assert none is None and log == "1, 0.1, 0.2, 1037.9\n"


def test_missing_or_unfinished_blocks_are_errors() -> None:
    with pytest.raises(GuestError, match="RTKVM-SOCKPERF-BEGIN"):
        console.marked_block(LOG, "SOCKPERF")
    with pytest.raises(GuestError, match="RTKVM-SOCKPERF-END missing"):
        console.marked_block("RTKVM-SOCKPERF-BEGIN args=x\nhalf", "SOCKPERF")
