"""Shared CLI pieces: the --root and --format options and error handling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from rtkvm.hostfs import HostFS

F = TypeVar("F", bound=Callable[..., Any])

root_option = click.option(
    "--root",
    "root",
    default="/",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="Read the host from this directory instead of / (a captured or synthetic tree).",
)

format_option = click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for machines.",
)


def open_host(root: str) -> HostFS:
    """The HostFS for a --root value."""
    return HostFS(root)
