"""`rtkvm up --rt-waiver REASON`: the option reaches UpRequest, `up` sets the waiver on its
own host through the API after the host is up and says so loudly; a blank reason is refused
before anything starts. Unit level: the API runs in process, no process is started."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rtkvm.allinone import stack
from rtkvm.allinone.stack import AllInOne, UpRequest, UpResult
from rtkvm.allinone.state import StateDir
from rtkvm.api.app import create_app
from rtkvm.api.testing import ADMIN_TOKEN, Cloud, expect
from rtkvm.cli.main import cli
from rtkvm.errors import InputError
from rtkvm.settings import Settings
from rtkvm.wire.user_client import CloudClient


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path}/api.db", bootstrap_admin_token=ADMIN_TOKEN)
    )
    helper = Cloud(app)
    yield helper
    helper.close()
    app.state.services.db.dispose()


def _no_processes(monkeypatch: pytest.MonkeyPatch, aio: AllInOne, cloud: Cloud) -> None:
    """Every step of `up` but the waiver is a no-op; its admin client is the in-process one."""
    for step in ("_ensure_api", "_check_admin", "_ensure_plan", "_ensure_enrolled"):
        monkeypatch.setattr(aio, step, lambda *a, **k: None)
    monkeypatch.setattr(aio, "_ensure_agent", lambda *a, **k: None)
    monkeypatch.setattr(aio, "_wait_host_up", lambda *a, **k: None)
    monkeypatch.setattr(aio.api, "pid", lambda: 101)
    monkeypatch.setattr(aio.agent, "pid", lambda: 102)
    client = CloudClient(http=cloud.client(ADMIN_TOKEN))
    monkeypatch.setattr(stack, "CloudClient", lambda *a, **k: client)


def test_up_sets_the_waiver_on_its_host_loudly(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.host("node1", verdict="not-ready", nodes=1, cores_per_node=4)
    aio = AllInOne(StateDir(tmp_path / "state"))
    _no_processes(monkeypatch, aio, cloud)
    result = aio.up(UpRequest(host="node1", rt_waiver="demo on a laptop"))
    [action] = [a for a in result.actions if "WAIVER" in a]
    assert "RT scheduling guarantees are OFF" in action
    assert "demo on a laptop" in action
    assert "rtkvm cloud host set node1 --no-rt-waiver" in action
    assert expect(cloud.admin.get("/v1/hosts/node1"), 200)["rt_waiver"] == "demo on a laptop"
    # a later `up` without the option keeps it
    again = aio.up(UpRequest(host="node1"))
    assert not [a for a in again.actions if "WAIVER" in a]
    assert expect(cloud.admin.get("/v1/hosts/node1"), 200)["rt_waiver"] == "demo on a laptop"


def test_a_blank_waiver_is_refused_before_anything_starts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with pytest.raises(InputError, match="needs a reason"):
        AllInOne(StateDir(state)).up(UpRequest(rt_waiver="  "))
    assert not state.exists()


def test_the_cli_option_reaches_the_request_and_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[UpRequest] = []

    def fake_up(self: AllInOne, req: UpRequest) -> UpResult:
        seen.append(req)
        waived = ["RT WAIVER set on host x"]
        return UpResult("http://127.0.0.1:1", "node1", 1, 2, 0.1, None, waived, waived)

    monkeypatch.setattr(AllInOne, "up", fake_up)
    args: list[Any] = ["up", "--state-dir", str(tmp_path / "s"), "--rt-waiver", "demo"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert [r.rt_waiver for r in seen] == ["demo"]
    assert "WARNING: RT WAIVER set on host x" in result.stderr
    result = CliRunner().invoke(cli, ["up", "--state-dir", str(tmp_path / "s")])
    assert seen[-1].rt_waiver is None
