"""Entry point of the ``rtkvm`` command: the top-level group and error handling.

Deliberate errors (RtkvmError) become one line on stderr and exit status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import click

from rtkvm import __version__
from rtkvm.cli.agent import agent
from rtkvm.cli.cloud import cloud
from rtkvm.cli.guest import guest
from rtkvm.cli.host import host
from rtkvm.cli.image import image
from rtkvm.cli.net import net
from rtkvm.cli.report import report
from rtkvm.cli.runtime import runtime
from rtkvm.cli.up import down, status, up
from rtkvm.errors import RtkvmError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rtkvm")
def cli() -> None:
    """rtkvm: real-time KVM for the masses."""


cli.add_command(host)
cli.add_command(guest)
cli.add_command(image)
cli.add_command(runtime)
cli.add_command(net)
cli.add_command(cloud)
cli.add_command(agent)
cli.add_command(report)
cli.add_command(up)
cli.add_command(down)
cli.add_command(status)


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
