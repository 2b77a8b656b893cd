"""``rtkvm agent --once`` end to end: real API in-process, libvirt's test driver."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from rtkvm.api.testing import Cloud, expect
from rtkvm.cli.main import cli
from rtkvm.guest.hypervisor import LibvirtHypervisor
from rtkvm.host.partition import PartitionPlan
from rtkvm.wire.agent_client import AgentClient

from .conftest import HOST_ROOT, TEST_URI, small_flavor


def _run(cloud: Cloud, token: str, tmp_path: Path, plan: PartitionPlan) -> tuple[int, str]:
    (tmp_path / "token").write_text(token + "\n")
    (tmp_path / "token").chmod(0o600)
    (tmp_path / "plan.json").write_text(plan.to_json())
    args = [
        "agent",
        "--token-file", str(tmp_path / "token"),
        "--plan", str(tmp_path / "plan.json"),
        "--root", str(HOST_ROOT),
        "--uri", TEST_URI,
        "--accel", "tcg",
        "--image", str(tmp_path),
        "--guest-dir", str(tmp_path),
        "--once",
    ]  # fmt: skip
    client = AgentClient(http=cloud.client(token))
    result = CliRunner().invoke(cli, args, obj={"client": client})
    return result.exit_code, result.output


def test_agent_once_registers_and_builds(
    cloud: Cloud, tmp_path: Path, plan: PartitionPlan, libvirt_test: LibvirtHypervisor
) -> None:
    token = expect(cloud.admin.post("/v1/hosts", json={"name": "node1"}), 201)["agent_token"]
    code, output = _run(cloud, token, tmp_path, plan)
    assert code == 0, output
    assert expect(cloud.admin.get("/v1/hosts/node1"), 200)["status"] == "up"
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    code, output = _run(cloud, token, tmp_path, plan)
    assert code == 0, output
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["state"] == "active"
    assert vm["id"] in {d.uuid for d in libvirt_test.domains()}


def test_empty_token_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n")
    (tmp_path / "token").chmod(0o600)
    result = CliRunner().invoke(
        cli, ["agent", "--token-file", str(tmp_path / "token"), "--once"], obj={}
    )
    assert result.exit_code != 0
    assert "is empty" in str(result.exception)


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("rtk_secret\n")
    token.chmod(0o644)
    result = CliRunner().invoke(cli, ["agent", "--token-file", str(token), "--once"], obj={})
    assert result.exit_code != 0
    assert f"run `chmod 600 {token}`" in str(result.exception)
