"""`rtkvm cloud host set / show / list / unknown` and `server list / show / delete --force`
through the typed client and the real API: waivers shown loudly, forced deletes warned about."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from rtkvm.api.testing import ADMIN_TOKEN, Cloud, FakeClock, expect
from rtkvm.cli.main import cli
from rtkvm.wire.user_client import CloudClient


def run(cloud: Cloud, token: str, *args: str) -> Result:
    client = CloudClient(http=cloud.client(token))
    return CliRunner().invoke(cli, ["cloud", *args], obj={"client": client})


def ok(cloud: Cloud, token: str, *args: str) -> Result:
    result = run(cloud, token, *args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def _token(client: TestClient) -> str:
    return str(client.headers["Authorization"].split()[1])


def _lab(cloud: Cloud) -> tuple[str, TestClient]:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    agent = cloud.host("lab", verdict="not-ready", nodes=1, cores_per_node=5)
    cloud.flavor("rt2", 2)
    return _token(alice), agent


def test_host_set_waiver_warns_and_list_show_mark_it(cloud: Cloud) -> None:
    alice, _ = _lab(cloud)
    done = ok(cloud, ADMIN_TOKEN, "host", "set", "lab", "--rt-waiver", "demo laptop")
    assert "RT scheduling guarantees are off for host lab" in done.stderr
    assert "--no-rt-waiver" in done.stderr
    assert "| rt_waiver " in done.stdout and "WAIVED: demo laptop" in done.stdout
    listed = ok(cloud, ADMIN_TOKEN, "host", "list").stdout
    assert "RT Waiver" in listed and "WAIVED: demo laptop" in listed
    shown = json.loads(ok(cloud, ADMIN_TOKEN, "host", "show", "lab", "-f", "json").stdout)
    assert shown["rt_waiver"] == "demo laptop"  # JSON as the API gives it
    assert "WAIVED: demo laptop" in ok(cloud, ADMIN_TOKEN, "host", "show", "lab").stdout

    made = json.loads(
        ok(cloud, alice, "server", "create", "vm", "--flavor", "rt2", "-f", "json").stdout
    )
    assert made["rt_waiver"] == "demo laptop"
    listed = ok(cloud, alice, "server", "list").stdout
    assert "not assured (host waiver: demo laptop)" in listed
    shown_vm = ok(cloud, alice, "server", "show", "vm").stdout
    assert "| rt " in shown_vm and "not assured (host waiver: demo laptop)" in shown_vm

    cleared = ok(cloud, ADMIN_TOKEN, "host", "set", "lab", "--no-rt-waiver")
    assert "WARNING" not in cleared.stderr
    assert "WAIVED" not in ok(cloud, ADMIN_TOKEN, "host", "list").stdout


def test_host_set_needs_exactly_one_choice_and_members_are_refused(cloud: Cloud) -> None:
    alice, _ = _lab(cloud)
    for args in ((), ("--rt-waiver", "x", "--no-rt-waiver")):
        result = run(cloud, ADMIN_TOKEN, "host", "set", "lab", *args)
        assert result.exit_code == 2
        assert "--rt-waiver REASON" in result.output and "--no-rt-waiver" in result.output
    shared = run(
        cloud, ADMIN_TOKEN, "host", "set", "lab", "--rt-waiver", "lab", "--pcpu-share", "2"
    )
    assert shared.exit_code == 0, shared.output
    assert "share each RT pCPU of host lab" in shared.stderr
    result = run(cloud, ADMIN_TOKEN, "host", "set", "lab", "--rt-waiver", " ")
    assert result.exit_code != 0
    assert "needs a reason" in str(result.exception)
    result = run(cloud, alice, "host", "set", "lab", "--rt-waiver", "mine")
    assert result.exit_code != 0
    assert "HTTP 403" in str(result.exception)


def test_host_unknown_lists_what_the_agent_reported(cloud: Cloud) -> None:
    _, agent = _lab(cloud)
    ident = str(uuid.uuid4())
    body = {"domains": [{"name": "by-hand", "uuid": ident, "running": True}]}
    expect(agent.post("/v1/agent/unknown", json=body), 200)
    table = ok(cloud, ADMIN_TOKEN, "host", "unknown", "lab").stdout
    assert "| by-hand " in table and "| unknown " in table
    rows: list[dict[str, Any]] = json.loads(
        ok(cloud, ADMIN_TOKEN, "host", "unknown", "lab", "-f", "json").stdout
    )
    assert [(r["name"], r["uuid"]) for r in rows] == [("by-hand", ident)]


def test_server_delete_force_frees_a_dead_hosts_server(cloud: Cloud, clock: FakeClock) -> None:
    alice, _ = _lab(cloud)
    ok(cloud, ADMIN_TOKEN, "host", "set", "lab", "--rt-waiver", "lab")
    vm = json.loads(
        ok(cloud, alice, "server", "create", "vm", "--flavor", "rt2", "-f", "json").stdout
    )
    refused = run(cloud, ADMIN_TOKEN, "server", "delete", "--force", vm["id"])
    assert refused.exit_code != 0 and "plain delete" in str(refused.exception)
    clock.advance(61)
    member = run(cloud, alice, "server", "delete", "--force", vm["id"])
    assert member.exit_code != 0 and "HTTP 403" in str(member.exception)
    done = ok(cloud, ADMIN_TOKEN, "server", "delete", "--force", vm["id"])
    assert f"rtkvm guest delete rtkvm-{vm['id']}" in done.stderr
    assert expect(cloud.admin.get("/v1/hosts/lab"), 200)["nodes"][0]["rt_used"] == 0


def test_serve_logs_no_access_lines_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    database = f"sqlite:///{tmp_path}/serve.db"
    for extra in ((), ("--access-log",)):
        args = ["cloud", "serve", "--database", database, "--listen", "127.0.0.1:9", *extra]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    assert [c["access_log"] for c in calls] == [False, True]
    assert calls[0]["port"] == 9
