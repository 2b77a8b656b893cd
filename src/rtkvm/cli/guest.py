"""``rtkvm guest ...``: design, audit and run real-time guests."""

from __future__ import annotations

import click

from rtkvm.cli.guest_design import audit_cmd, design_cmd


@click.group()
def guest() -> None:
    """Design, audit and run real-time guests on libvirt."""


guest.add_command(design_cmd)
guest.add_command(audit_cmd)
