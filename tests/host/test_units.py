"""systemd units for the switch, the agent and the API: rendered with this installation's
rtkvm, accepted by systemd's own verifier, written without touching a file rtkvm did not
write, removed the same way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtkvm.cli.main import cli
from rtkvm.errors import InputError
from rtkvm.host.units import API_UNIT, NODE_UNITS, render, write

ALL = (*NODE_UNITS, API_UNIT)


def test_units_name_this_rtkvm_and_the_agent_follows_libvirt_and_the_switch() -> None:
    agent = render("rtkvm-agent.service", "/opt/rtkvm/bin/rtkvm")
    assert "ExecStart=/opt/rtkvm/bin/rtkvm agent --api ${RTKVM_URL}" in agent
    after = "After=network-online.target libvirtd.service libvirt-guests.service rtkvm-switch"
    assert after in agent  # stopped before the guests are: a reboot is no guest's own stop
    switch = render("rtkvm-switch.service", "/opt/rtkvm/bin/rtkvm")
    assert "ExecStop=/opt/rtkvm/bin/rtkvm net down" in switch and "RemainAfterExit=yes" in switch
    with pytest.raises(InputError, match="absolute path"):
        render("rtkvm-api.service", "rtkvm")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_them(tmp_path: Path) -> None:
    dest, stubs = tmp_path / "units", tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "libvirtd.service").write_text("[Service]\nExecStart=/bin/true\n")  # libvirt's own
    rtkvm = str(Path(sys.executable).with_name("rtkvm"))
    write(dest, ALL, rtkvm)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(dest / n) for n in ALL)],
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{stubs}:"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_write_and_remove_leave_foreign_units_alone(tmp_path: Path) -> None:
    theirs = tmp_path / "rtkvm-agent.service"
    theirs.write_text("[Service]\nExecStart=/usr/local/bin/their-agent\n")
    runner = CliRunner()
    refused = runner.invoke(cli, ["host", "units", "--write", "--dest", str(tmp_path)])
    assert refused.exit_code != 0 and not (tmp_path / "rtkvm-switch.service").exists()
    assert "were not written by rtkvm" in str(refused.exception)
    theirs.unlink()
    done = runner.invoke(cli, ["host", "units", "--write", "--dest", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NODE_UNITS)
    again = runner.invoke(cli, ["host", "units", "--write", "--dest", str(tmp_path)])
    assert again.exit_code == 0  # rtkvm's own units are rewritten
    (tmp_path / API_UNIT).write_text("[Service]\nExecStart=/bin/true\n")  # not rtkvm's
    gone = runner.invoke(cli, ["host", "units", "--remove", "--dest", str(tmp_path)])
    assert gone.exit_code == 0 and [p.name for p in tmp_path.iterdir()] == [API_UNIT]
    shown = runner.invoke(cli, ["host", "units"])
    assert "# /etc/systemd/system/rtkvm-agent.service" in shown.output
