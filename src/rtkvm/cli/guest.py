"""``rtkvm guest ...``: design, audit and run real-time guests."""

from __future__ import annotations

import click


@click.group()
def guest() -> None:
    """Design, audit and run real-time guests on libvirt."""
