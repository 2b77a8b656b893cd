"""`rtkvm cloud server create --wait` / `server delete --wait` through the real API,
with a fake agent that reports between polls (the CLI's sleep)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from rtkvm.api.testing import ADMIN_TOKEN, Cloud, expect
from rtkvm.cli import cloud_wait
from rtkvm.cli.main import cli
from rtkvm.wire.user_client import CloudClient


def _run(cloud: Cloud, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout, and stderr followed by the exception's message (main prints it)."""
    client = CloudClient(http=cloud.client(ADMIN_TOKEN))
    result = CliRunner().invoke(cli, ["cloud", *args], obj={"client": client})
    raised = result.exception
    err = result.stderr + (str(raised) if raised and not isinstance(raised, SystemExit) else "")
    return result.exit_code, result.stdout, err


def _agent_reports(
    monkeypatch: pytest.MonkeyPatch, agent: TestClient, state: str, fault: str | None = None
) -> list[str]:
    """Each poll's sleep lets the agent move every instance of its host to ``state``."""
    moved: list[str] = []

    def step(_: float) -> None:
        for inst in expect(agent.get("/v1/agent/instances"), 200):
            if inst["state"] in ("building", "deleting"):
                body = {"state": state, "fault": fault}
                expect(agent.post(f"/v1/agent/instances/{inst['id']}/state", json=body), 200)
                moved.append(inst["id"])

    monkeypatch.setattr(cloud_wait, "sleep", step)
    return moved


def _setup(cloud: Cloud) -> TestClient:
    agent = cloud.host("h1", nodes=1, cores_per_node=5)
    cloud.flavor("rt2", 2)
    return agent


def test_create_waits_until_active(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    moved = _agent_reports(monkeypatch, _setup(cloud), "active")
    code, out, err = _run(
        cloud, "server", "create", "vm", "--flavor", "rt2", "--wait", "-f", "json"
    )
    assert code == 0, err
    assert json.loads(out)["state"] == "active"
    assert "building" in err and "active" in err
    assert len(moved) == 1


def test_create_wait_exits_1_with_the_fault(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    _agent_reports(monkeypatch, _setup(cloud), "error", "define failed: no such image")
    code, _, err = _run(cloud, "server", "create", "vm", "--flavor", "rt2", "--wait")
    assert code == 1
    assert "define failed: no such image" in err


def test_delete_waits_until_the_agent_freed_it(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = _setup(cloud)
    _agent_reports(monkeypatch, agent, "active")
    code, out, err = _run(
        cloud, "server", "create", "vm", "--flavor", "rt2", "--wait", "-f", "json"
    )
    assert code == 0, err
    server = json.loads(out)["id"]
    _agent_reports(monkeypatch, agent, "deleted")
    code, _, err = _run(cloud, "server", "delete", server, "--wait")
    assert code == 0, err
    assert "deleting" in err
    host = expect(cloud.admin.get("/v1/hosts/h1"), 200)
    assert host["nodes"][0]["rt_used"] == 0


def test_wait_times_out_saying_where_the_server_is(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(cloud)
    ticks: list[float] = [0.0]

    def clock() -> float:
        ticks[0] += 10.0
        return ticks[0]

    nothing: Callable[[float], None] = lambda _: None  # noqa: E731 - no agent answers
    monkeypatch.setattr(cloud_wait, "sleep", nothing)
    monkeypatch.setattr(cloud_wait, "clock", clock)
    code, _, err = _run(
        cloud, "server", "create", "vm", "--flavor", "rt2", "--wait", "--timeout", "30"
    )
    assert code != 0
    assert "still building after 30 s" in err


def _agent_does_tasks(
    monkeypatch: pytest.MonkeyPatch, agent: TestClient, fail: str | None = None
) -> list[str]:
    """Each poll's sleep lets the agent finish every power task (or fail it with ``fail``)."""
    done: list[str] = []
    results = {"stopping": "stopped", "starting": "active", "rebooting": "active"}
    results["rebooting-hard"] = "active"

    def step(_: float) -> None:
        for inst in expect(agent.get("/v1/agent/instances"), 200):
            if inst["task"]:
                state = "error" if fail else results[inst["task"]]
                body = {"state": state, "fault": fail, "done": inst["task"]}
                expect(agent.post(f"/v1/agent/instances/{inst['id']}/state", json=body), 200)
                done.append(inst["task"])

    monkeypatch.setattr(cloud_wait, "sleep", step)
    return done


def test_stop_start_reboot_wait_until_the_agent_did_them(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = _setup(cloud)
    _agent_reports(monkeypatch, agent, "active")
    assert _run(cloud, "server", "create", "vm", "--flavor", "rt2", "--wait")[0] == 0
    done = _agent_does_tasks(monkeypatch, agent)
    code, _, err = _run(cloud, "server", "stop", "vm", "--wait")
    assert code == 0, err
    assert "vm" in err and "stopping" in err and "stopped" in err
    code, _, err = _run(cloud, "server", "stop", "vm")
    assert code == 0 and "already stopped" in err
    assert _run(cloud, "server", "start", "vm", "--wait")[0] == 0
    assert _run(cloud, "server", "reboot", "vm", "--hard", "--wait")[0] == 0
    assert done == ["stopping", "starting", "rebooting-hard"]
    code, out, _ = _run(cloud, "server", "list", "-f", "json")
    assert [(s["state"], s["task"]) for s in json.loads(out)] == [("active", None)]


def test_a_power_action_that_fails_exits_1_with_the_fault(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = _setup(cloud)
    _agent_reports(monkeypatch, agent, "active")
    assert _run(cloud, "server", "create", "vm", "--flavor", "rt2", "--wait")[0] == 0
    _agent_does_tasks(monkeypatch, agent, fail="starting failed: no memory")
    code, _, err = _run(cloud, "server", "reboot", "vm", "--wait")
    assert code == 1 and "starting failed: no memory" in err
    code, _, err = _run(cloud, "server", "reboot", "vm")  # in error: only --hard
    assert code != 0 and "reboot --hard builds it again" in err
