"""``rtkvm guest ...``: design, audit and run real-time guests."""

from __future__ import annotations

import click

from rtkvm.cli.guest_design import audit_cmd, design_cmd
from rtkvm.cli.guest_lifecycle import create, delete, list_, measure, start, stop, verify


@click.group()
def guest() -> None:
    """Design, audit and run real-time guests on libvirt."""


guest.add_command(design_cmd)
guest.add_command(audit_cmd)
guest.add_command(create)
guest.add_command(start)
guest.add_command(stop)
guest.add_command(delete)
guest.add_command(list_)
guest.add_command(verify)
guest.add_command(measure)
