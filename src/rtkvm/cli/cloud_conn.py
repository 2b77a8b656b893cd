"""The API connection of ``rtkvm cloud`` commands: the URL and token the group was given.

``rtkvm cloud`` records its --url/--token in the click context; every
subcommand (cloud.py, cloud_measure.py) gets its typed client here. Tests put
a ready client in ``ctx.obj["client"]`` (any httpx transport). This module
must not run a command.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from rtkvm.wire.user_client import CloudClient

META_KEY = "rtkvm.cloud"


@dataclass(frozen=True)
class Conn:
    url: str
    token: str | None
    ca_file: str | None = None


def remember(ctx: click.Context, url: str, token: str | None, ca_file: str | None = None) -> None:
    ctx.meta[META_KEY] = Conn(url, token, ca_file)


def api_of(ctx: click.Context) -> CloudClient:
    """The client of the API this command talks to."""
    obj = ctx.find_root().obj
    if isinstance(obj, dict):
        given = obj.get("client")
        if isinstance(given, CloudClient):
            return given
    conn: Conn = ctx.meta[META_KEY]
    return CloudClient(conn.url, conn.token, ca_file=conn.ca_file)
