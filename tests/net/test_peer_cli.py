"""`rtkvm net peer add/delete`: a real namespace behind a real veth, removed again."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from rtkvm.cli.main import cli, main

pytestmark = pytest.mark.integration

NS, UPLINK = f"rtkvm-pt{os.getpid() % 10000}", f"rtkpt{os.getpid() % 10000}"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def root_with_ip() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("ethtool") is None:
        pytest.skip("needs root, ip and ethtool")


def test_add_then_delete_leaves_nothing(root_with_ip: None) -> None:
    runner = CliRunner()
    try:
        added = runner.invoke(
            cli, ["net", "peer", "add", NS, "--uplink", UPLINK, "--address", "10.99.0.1/24"]
        )
        assert added.exit_code == 0, added.output
        assert f"behind uplink {UPLINK}" in added.output
        assert "10.99.0.1/24" in _ip("-n", NS, "addr", "show", "eth0").stdout
        assert _ip("link", "show", UPLINK).returncode == 0
    finally:
        gone = runner.invoke(cli, ["net", "peer", "delete", NS, "--uplink", UPLINK])
    assert gone.exit_code == 0, gone.output
    assert _ip("link", "show", UPLINK).returncode != 0
    assert NS not in _ip("netns", "list").stdout.split()
    again = runner.invoke(cli, ["net", "peer", "delete", NS, "--uplink", UPLINK])
    assert again.exit_code == 0, again.output


def test_address_without_prefix_is_refused_before_anything_is_made(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["net", "peer", "add", NS, "--uplink", UPLINK, "--address", "10.99.0.1"])
    assert done.value.code == 2
    assert "ADDR/PREFIX" in capsys.readouterr().err
    assert NS not in _ip("netns", "list").stdout.split()
