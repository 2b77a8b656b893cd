"""``rtkvm agent`` logs only rtkvm's own lines: httpx and httpcore are set to WARNING
(they would log one INFO line per heartbeat and poll)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtkvm.api.testing import Cloud, expect
from rtkvm.cli.main import cli
from rtkvm.guest.hypervisor import LibvirtHypervisor
from rtkvm.host.partition import PartitionPlan
from rtkvm.wire.agent_client import AgentClient

from .conftest import HOST_ROOT, TEST_URI

CHATTY = ("httpx", "httpcore")


@pytest.fixture
def levels() -> Iterator[None]:
    before = {name: logging.getLogger(name).level for name in CHATTY}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("levels")
def test_agent_quiets_the_http_client_loggers(
    cloud: Cloud, tmp_path: Path, plan: PartitionPlan, libvirt_test: LibvirtHypervisor
) -> None:
    token = expect(cloud.admin.post("/v1/hosts", json={"name": "node1"}), 201)["agent_token"]
    (tmp_path / "token").write_text(token + "\n")
    (tmp_path / "token").chmod(0o600)
    (tmp_path / "plan.json").write_text(plan.to_json())
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET)
    args = ["agent", "--token-file", str(tmp_path / "token"),
            "--plan", str(tmp_path / "plan.json"), "--root", str(HOST_ROOT),
            "--uri", TEST_URI, "--accel", "tcg", "--image", str(tmp_path),
            "--guest-dir", str(tmp_path), "--once"]  # fmt: skip
    client = AgentClient(http=cloud.client(token))
    result = CliRunner().invoke(cli, args, obj={"client": client})
    assert result.exit_code == 0, result.output
    assert [logging.getLogger(n).level for n in CHATTY] == [logging.WARNING] * 2
