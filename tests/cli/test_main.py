"""The top-level command: subcommands load on use, so host commands start fast."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from rtkvm.cli.main import COMMANDS, cli


def test_host_commands_do_not_import_the_control_plane() -> None:
    code = (
        "import sys; from rtkvm.cli.main import cli; cli.get_command(None, 'host'); "
        "print(','.join(m for m in ('fastapi', 'sqlalchemy', 'libvirt', 'httpx') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_every_listed_command_loads_and_help_lists_them() -> None:
    for name in COMMANDS:
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert all(f"  {name} " in result.output for name in COMMANDS)


def test_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(cli, ["hots"])
    assert result.exit_code == 2 and "No such command 'hots'" in result.output
