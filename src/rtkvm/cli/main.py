"""Entry point of the ``rtkvm`` command: the top-level group and error handling.

Deliberate errors (RtkvmError) become one line on stderr and exit status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from rtkvm import __version__
from rtkvm.errors import RtkvmError

COMMANDS: dict[str, str] = {
    "host": "rtkvm.cli.host:host",
    "guest": "rtkvm.cli.guest:guest",
    "image": "rtkvm.cli.image:image",
    "runtime": "rtkvm.cli.runtime:runtime",
    "net": "rtkvm.cli.net:net",
    "cloud": "rtkvm.cli.cloud:cloud",
    "agent": "rtkvm.cli.agent:agent",
    "openstack": "rtkvm.cli.openstack:openstack",
    "report": "rtkvm.cli.report:report",
    "up": "rtkvm.cli.up:up",
    "down": "rtkvm.cli.up:down",
    "status": "rtkvm.cli.up:status",
}
"""Top-level commands and where they live. Each is imported when it is used, so that
`rtkvm host inspect` does not pay for the API server, the database and libvirt."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (from COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rtkvm")
def cli() -> None:
    """rtkvm: real-time KVM for the masses."""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; RtkvmError becomes a clear message and exit status 2."""
    try:
        code = cli.main(args=argv, prog_name="rtkvm", standalone_mode=False)
    except RtkvmError as exc:
        click.echo(f"rtkvm: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("rtkvm: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
