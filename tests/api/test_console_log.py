"""A server's console log through the API: refusals, the agent's side, the CLI's wait.

The whole path with a real agent is tests/agent/test_loop_console.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rtkvm.api.testing import ADMIN_TOKEN, Cloud, FakeClock, expect
from rtkvm.cli import cloud_wait
from rtkvm.cli.main import cli
from rtkvm.guest.console import printable_tail
from rtkvm.wire.guest import CONSOLE_MAX
from rtkvm.wire.user_client import CloudClient


def test_what_cannot_have_a_console_is_refused_with_why(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("huge", 64)
    cloud.host("h1")
    refused = alice.post("/v1/instances", json={"name": "vm", "flavor": "huge"})
    assert refused.status_code == 409
    [vm] = expect(alice.get("/v1/instances"), 200)
    answer = alice.post(f"/v1/instances/{vm['id']}/console-log")
    assert answer.status_code == 409 and "on no host" in answer.json()["detail"]


def test_an_agent_sends_only_for_its_own_hosts_guests_and_within_the_limit(
    cloud: Cloud,
) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    mine = cloud.host("h1")
    other = cloud.host("h2")
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    owner, stranger = (mine, other) if vm["host"] == "h1" else (other, mine)
    path = f"/v1/agent/instances/{vm['id']}/console"
    assert stranger.put(path, json={"text": "x"}).status_code == 404
    too_long = owner.put(path, json={"text": "x" * (CONSOLE_MAX + 1)})
    assert too_long.status_code == 422
    assert owner.put(path, json={"text": "ok\n"}).status_code == 204
    assert expect(alice.get(f"/v1/instances/{vm['id']}/console-log"), 200)["text"] == "ok\n"


def test_the_tail_starts_at_a_whole_line(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    log.write_text("".join(f"line {i}\n" for i in range(50_000)))
    text, cut = printable_tail(log, 1000)
    assert cut and len(text) <= 1000 and text.startswith("line ") and text.endswith("line 49999\n")
    assert printable_tail(tmp_path / "none.log", 1000) == ("", False)


def test_the_cli_waits_for_the_agent_and_prints_the_last_lines(
    cloud: Cloud, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.project("p1")
    cloud.flavor("rt2", 2)
    agent = cloud.host("h1")
    admin = CloudClient(http=cloud.client(ADMIN_TOKEN))
    vm = admin.create_server("vm", "rt2", [], project="p1")

    def agent_answers(_: float) -> None:  # the agent's next step, while the CLI waits
        [work] = expect(agent.get("/v1/agent/instances"), 200)
        if work["console_wanted"]:
            body = {"text": "one\ntwo\nthree\n"}
            expect(agent.put(f"/v1/agent/instances/{vm.id}/console", json=body), 204)

    monkeypatch.setattr(cloud_wait, "sleep", agent_answers)
    result = CliRunner().invoke(
        cli, ["cloud", "server", "console-log", vm.id, "--lines", "2"], obj={"client": admin}
    )
    assert result.exit_code == 0, result.output
    assert result.output == "two\nthree\n"

    clock.advance(10)  # a later request: the log sent before does not answer it
    monkeypatch.setattr(cloud_wait, "sleep", lambda _: None)
    monkeypatch.setattr(cloud_wait, "clock", iter([0.0, 0.0, 99.0, 99.0]).__next__)
    late: Any = CliRunner().invoke(
        cli, ["cloud", "server", "console-log", vm.id, "--timeout", "5"], obj={"client": admin}
    )
    assert late.exit_code != 0 and "did not send its console log within 5 s" in str(
        late.exception or late.output
    )
