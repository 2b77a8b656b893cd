"""Wait for a server to reach a state through the API, saying each change on stderr.

Used by ``rtkvm cloud server create --wait`` (until active or error),
``server delete --wait`` (until deleted or gone) and ``server stop | start |
reboot --wait`` (until its power task is done), and ``server console-log``
(until the host's agent sent the log it was asked for). Polls ``GET
/instances/{id}`` (CloudClient.server); bounded by a timeout. Sleeping is a module attribute so
tests can replace it. This module must not change anything in the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from rtkvm.errors import CloudError, WaitTimeoutError
from rtkvm.wire.guest import ConsoleLogOut, InstanceOut
from rtkvm.wire.user_client import CloudClient

POLL_SECONDS = 1.0
ACTIVE_OR_ERROR = frozenset({"active", "error"})
DELETED_OR_ERROR = frozenset({"deleted", "error"})
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.monotonic


def wait_server(
    api: CloudClient, server_id: str, until: frozenset[str], *, timeout: float
) -> InstanceOut | None:
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
        state = item.state
        if state != last:
            click.echo(f"server {item.name} ({server_id}): {state}", err=True)
            last = state
        if state in until:
            return item
        if clock() > deadline:
            raise WaitTimeoutError(
                f"server {server_id} is still {state} after {timeout:g} s: see its host's agent "
                "log, or wait longer with --timeout"
            )
        sleep(POLL_SECONDS)


def wait_task(api: CloudClient, server_id: str, *, timeout: float) -> InstanceOut:
    """The server once its power task is done (the agent cleared it)."""
    deadline = clock() + timeout
    last: tuple[str, str | None] | None = None
    while True:
        item = api.server(server_id)
        now = (item.state, item.task)
        if now != last:
            doing = f" ({item.task})" if item.task else ""
            click.echo(f"server {item.name} ({server_id}): {item.state}{doing}", err=True)
            last = now
        if item.task is None:
            return item
        if clock() > deadline:
            raise WaitTimeoutError(
                f"server {server_id} is still {item.task} after {timeout:g} s: a stop waits for "
                "the guest up to the agent's --stop-timeout; see its host's agent log, or wait "
                "longer with --timeout"
            )
        sleep(POLL_SECONDS)


def wait_console(api: CloudClient, server_id: str, *, timeout: float) -> ConsoleLogOut:
    """Ask the server's host agent for its console log and wait until it sent it."""
    asked = api.ask_console(server_id)
    deadline = clock() + timeout
    while True:
        found = api.console_log(server_id)
        if (
            found.taken_at is not None
            and asked.requested_at is not None
            and found.taken_at >= asked.requested_at
        ):
            return found
        if clock() > deadline:
            raise WaitTimeoutError(
                f"server {server_id}'s host agent did not send its console log within "
                f"{timeout:.0f} s: is its host up (`rtkvm cloud host list`)?"
            )
        sleep(min(POLL_SECONDS, 0.5))
