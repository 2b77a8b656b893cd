"""Wait for a server to reach a state through the API, saying each change on stderr.

Used by ``rtkvm cloud server create --wait`` (until active or error) and
``server delete --wait`` (until deleted or gone). Polls ``GET
/v1/instances/{id}``; bounded by a timeout. Sleeping is a module attribute so
tests can replace it. This module must not change anything in the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from rtkvm.client import CloudClient, CloudError
from rtkvm.errors import RtkvmError

POLL_SECONDS = 1.0
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.monotonic


class WaitTimeoutError(RtkvmError):
    """The server did not reach the state in time; says where it is."""


def wait_server(
    api: CloudClient, server_id: str, until: frozenset[str], *, timeout: float
) -> dict[str, Any] | None:
    """The server once its state is in ``until``; None when it is gone (404)."""
    deadline = clock() + timeout
    last: str | None = None
    while True:
        try:
            item = api.server(server_id)
        except CloudError as exc:
            if exc.status == 404:
                return None
            raise
        state = str(item["state"])
        if state != last:
            click.echo(f"server {item['name']} ({server_id}): {state}", err=True)
            last = state
        if state in until:
            return item
        if clock() > deadline:
            raise WaitTimeoutError(
                f"server {server_id} is still {state} after {timeout:g} s: see its host's agent "
                "log, or wait longer with --timeout"
            )
        sleep(POLL_SECONDS)
