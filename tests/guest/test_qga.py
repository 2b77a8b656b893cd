"""The guest agent's protocol as rtkvm drives it: exec, poll, captured output, and what a
guest without an agent answers. The real qemu-guest-agent is driven by the demo e2e."""

from __future__ import annotations

import base64
import json
from typing import Any

import libvirt
import pytest

from rtkvm.errors import GuestError
from rtkvm.guest import qga
from rtkvm.guest.qga import GuestAgent


class FakeAgent:
    """qemu-guest-agent as seen through libvirt: a program that exits after two polls."""

    def __init__(self, *, connected: bool = True, polls: int = 2) -> None:
        self.connected = connected
        self.polls = polls
        self.requests: list[dict[str, Any]] = []

    def __call__(self, dom: Any, request: str, timeout: int) -> str:
        if not self.connected:
            raise libvirt.libvirtError(
                "Guest agent is not responding: QEMU guest agent is not connected"
            )
        sent = json.loads(request)
        self.requests.append(sent)
        if sent["execute"] == "guest-exec":
            return json.dumps({"return": {"pid": 42}})
        if sent["execute"] == "guest-exec-status":
            self.polls -= 1
            if self.polls > 0:
                return json.dumps({"return": {"exited": False}})
            out = base64.b64encode(b"T: 0 ( 1) P:90 I:1000 C: 1000 Min: 5 Act: 6 Avg: 7 Max: 9\n")
            return json.dumps({"return": {"exited": True, "exitcode": 0, "out-data": out.decode()}})
        return json.dumps({"return": {}})


def test_a_program_runs_and_its_output_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qga, "POLL_S", 0)
    fake = FakeAgent()
    done = GuestAgent(object(), "vm", fake).run("/usr/bin/cyclictest", ["-q"], timeout=5)
    assert (done.code, done.stderr) == (0, "") and "Max: 9" in done.stdout
    assert fake.requests[0] == {
        "execute": "guest-exec",
        "arguments": {"path": "/usr/bin/cyclictest", "arg": ["-q"], "capture-output": True},
    }
    assert fake.requests[-1] == {"execute": "guest-exec-status", "arguments": {"pid": 42}}


def test_a_guest_without_its_agent_says_what_is_missing() -> None:
    with pytest.raises(GuestError, match="needs qemu-guest-agent installed and running"):
        GuestAgent(object(), "vm", FakeAgent(connected=False)).ping()


def test_a_program_that_runs_too_long_is_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qga, "POLL_S", 0)
    with pytest.raises(GuestError, match="ran longer than 0 s"):
        GuestAgent(object(), "vm", FakeAgent(polls=10**6)).run("/bin/sleep", ["9"], timeout=0)
