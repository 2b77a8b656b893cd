"""``rtkvm host ...``: inspect, doctor, plan and capture a compute node."""

from __future__ import annotations

import click


@click.group()
def host() -> None:
    """Inspect, check and plan a real-time compute node."""
