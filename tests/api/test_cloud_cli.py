"""`rtkvm cloud ...` through the typed client and the real API, over an in-process transport."""

from __future__ import annotations

import json

from click.testing import CliRunner

from rtkvm.api.testing import ADMIN_TOKEN, Cloud
from rtkvm.cli.main import cli
from rtkvm.errors import CloudError
from rtkvm.wire.user_client import CloudClient


def run(cloud: Cloud, token: str, *args: str) -> tuple[int, str, BaseException | None]:
    client = CloudClient(http=cloud.client(token))
    result = CliRunner().invoke(cli, ["cloud", *args], obj={"client": client})
    return result.exit_code, result.output, result.exception


def ok(cloud: Cloud, token: str, *args: str) -> str:
    code, out, exc = run(cloud, token, *args)
    assert code == 0, (args, out, exc)
    return out


def test_admin_and_member_workflow_in_tables_and_json(cloud: Cloud) -> None:
    ok(cloud, ADMIN_TOKEN, "project", "create", "p1", "--rt-cores", "8")
    ok(cloud, ADMIN_TOKEN, "user", "create", "alice", "--project", "p1")
    issued = json.loads(ok(cloud, ADMIN_TOKEN, "token", "issue", "--user", "alice", "-f", "json"))
    alice = issued["secret"]
    enrolled = json.loads(ok(cloud, ADMIN_TOKEN, "host", "enroll", "h0", "-f", "json"))
    assert enrolled["agent_token"].startswith("rtk_")
    cloud.host("h1", physnets=("blue",))
    out = ok(
        cloud,
        ADMIN_TOKEN,
        "flavor",
        "create",
        "rt4",
        "--vcpus",
        "4",
        "--ram",
        "1024",
        "--property",
        "hw:cpu_policy=dedicated",
        "--property",
        "hw:cpu_realtime=yes",
        "--property",
        "hw:cpu_realtime_mask=^0",
    )
    assert "| rt_vcpus " in out
    assert "| 1-3 " in out
    ok(
        cloud,
        ADMIN_TOKEN,
        "network",
        "create",
        "blue",
        "--provider-physical-network",
        "blue",
        "--share",
    )

    table = ok(cloud, alice, "network", "list")
    assert table.splitlines()[0].startswith("+--")
    assert "| blue " in table
    created = json.loads(
        ok(
            cloud,
            alice,
            "server",
            "create",
            "vm1",
            "--flavor",
            "rt4",
            "--network",
            "blue",
            "-f",
            "json",
        )
    )
    assert created["state"] == "building"
    assert created["host"] == "h1"
    listing = ok(cloud, alice, "server", "list")
    assert created["id"] in listing
    assert "| building |" in listing
    shown = json.loads(ok(cloud, alice, "server", "show", "vm1", "-f", "json"))
    assert shown["vcpu_pins"] == created["vcpu_pins"]
    hosts = ok(cloud, ADMIN_TOKEN, "host", "list", "-f", "value")
    assert "h1 up rtkvm ready ready blue 10" in hosts  # 14 RT pCPUs, 4 taken
    assert "h0 enrolled" in hosts
    usage = json.loads(ok(cloud, alice, "usage", "p1", "-f", "json"))
    assert usage["rt_cores_in_use"] == 4
    ok(cloud, alice, "server", "delete", "vm1")
    assert (
        json.loads(ok(cloud, alice, "server", "show", created["id"], "-f", "json"))["state"]
        == "deleting"
    )
    ok(cloud, alice, "server", "delete", created["id"])  # idempotent


def test_errors_carry_the_servers_message(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    token = alice.headers["Authorization"].split()[1]
    code, _, exc = run(cloud, token, "project", "create", "p2")
    assert code != 0
    assert isinstance(exc, CloudError)
    assert exc.status == 403
    assert "admin role" in str(exc)
    code, _, exc = run(cloud, token, "server", "create", "vm", "--flavor", "nope")
    assert isinstance(exc, CloudError)
    assert "flavor 'nope' not found" in str(exc)
    code, _, exc = run(cloud, token, "server", "show", "ghost")
    assert isinstance(exc, CloudError)
    assert "no server named 'ghost'" in str(exc)
    code, _, exc = run(cloud, "rtk_wrong", "server", "list")
    assert isinstance(exc, CloudError)
    assert exc.status == 401


def test_unreachable_api_says_where_it_looked() -> None:
    client = CloudClient("http://127.0.0.1:9", "x", timeout=2)
    try:
        client.servers()
    except CloudError as exc:
        assert "cannot reach the rtkvm API at http://127.0.0.1:9" in str(exc)
    else:
        raise AssertionError("expected CloudError")


def test_host_delete_removes_an_empty_host_and_refuses_one_with_servers(cloud: Cloud) -> None:
    ok(cloud, ADMIN_TOKEN, "host", "enroll", "h0", "-f", "json")
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    cloud.host("h1")
    made = alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"})
    assert made.status_code == 201, made.text
    code, _out, exc = run(cloud, ADMIN_TOKEN, "host", "delete", "h1")
    assert code != 0 and isinstance(exc, CloudError)
    assert "host 'h1' still has instances: delete or move them first" in str(exc)
    ok(cloud, ADMIN_TOKEN, "host", "delete", "h0", "gone-already")
    names = [h["name"] for h in json.loads(ok(cloud, ADMIN_TOKEN, "host", "list", "-f", "json"))]
    assert names == ["h1"]
