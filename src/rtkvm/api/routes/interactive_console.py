"""A server's interactive serial console through the API, relayed by its host's agent.

``WS /v1/instances/{id}/console``: the caller authenticates with its bearer
token as for any route and sees only what it may see. The API makes a
one-use ticket, connects to the console relay the server's host agent
registered, and after the agent's ``OK`` passes bytes both ways until
either side ends (protocol: :mod:`rtkvm.wire.console`). A refusal before
the websocket opens is an HTTP answer with ``{"detail": ...}``, as every
other error. ``POST /v1/agent/console-tickets/redeem`` is the agent's half:
it turns a ticket into the server it opens, once. This module must not
read any host file or open a console itself: only the agent does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import delete
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from rtkvm.api.deps import AgentDep, Principal, Services, ServicesDep, authenticate
from rtkvm.api.errors import ApiError
from rtkvm.api.views import instance_for, locked_instance
from rtkvm.db.models import ConsoleTicket, Host
from rtkvm.wire.console import (
    LINE_MAX,
    TICKET_TTL_S,
    ConsoleTicketIn,
    ConsoleTicketOut,
    hello,
    parse_answer,
    split_address,
)
from rtkvm.wire.node import RTKVM_ENGINE
from rtkvm.wire.secrets import hash_secret

log = logging.getLogger(__name__)
router = APIRouter(tags=["instances"])

CONNECT_TIMEOUT_S = 5.0
"""How long the API waits for the agent's relay to accept the connection."""
ANSWER_TIMEOUT_S = 15.0
"""How long it waits for the relay's OK (the agent redeems the ticket through the API)."""
CHUNK = 65536
TICKETS_KEPT_S = 3600.0
"""Expired tickets older than this are removed when a new one is made."""


@dataclass(frozen=True)
class _Target:
    instance_id: str
    name: str
    host: str
    port: int
    ticket: str


@router.websocket("/v1/instances/{instance_id}/console")
async def console(websocket: WebSocket, instance_id: str) -> None:
    """Relay the server's serial console; refused (HTTP 4xx) with what to change."""
    services: Services = websocket.app.state.services
    source = websocket.client.host if websocket.client else "unknown"
    try:
        caller = await run_in_threadpool(_caller, services, source, websocket)
        target = await run_in_threadpool(_ticket, services, instance_id, caller)
        reader, writer = await _open_relay(target)
    except ApiError as exc:
        await _deny(websocket, exc.status, exc.message)
        return
    started = time.monotonic()
    await websocket.accept()
    log.info(
        "console of server %s (%s) opened by %s", target.name, target.instance_id, caller.user_name
    )
    sent, received, why = await _relay(websocket, reader, writer)
    log.info(
        "console of server %s closed after %.0f s (%d bytes in, %d out): %s",
        target.name,
        time.monotonic() - started,
        sent,
        received,
        why,
    )


@router.post("/v1/agent/console-tickets/redeem")
def redeem(body: ConsoleTicketIn, services: ServicesDep, agent: AgentDep) -> ConsoleTicketOut:
    """The server a ticket opens, once, for the agent of that server's host."""
    now = services.clock()
    with services.db.write() as s:
        ticket = s.get(ConsoleTicket, hash_secret(body.ticket), with_for_update=True)
        if ticket is None or ticket.host_id != agent.host_id:
            raise ApiError(404, "unknown console ticket, or one for another host")
        if ticket.redeemed_at is not None:
            raise ApiError(409, "this console ticket was used already: open the console again")
        if now >= ticket.expires_at:
            raise ApiError(409, "this console ticket expired: open the console again")
        ticket.redeemed_at = now
        inst = locked_instance(s, ticket.instance_id)
        if inst is None or inst.host_id != agent.host_id or inst.state != "active":
            raise ApiError(409, "the ticket's server is no longer active on this host")
        return ConsoleTicketOut(instance_id=inst.id, name=inst.name)


def _caller(services: Services, source: str, websocket: WebSocket) -> Principal:
    header = websocket.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    creds = (
        HTTPAuthorizationCredentials(scheme="Bearer", credentials=token.strip())
        if scheme.lower() == "bearer" and token.strip()
        else None
    )
    caller = authenticate(services, source, creds)
    if caller.kind != "user":
        raise ApiError(403, "an agent token can only use the agent API: use a user token")
    return caller


def _ticket(services: Services, instance_id: str, caller: Principal) -> _Target:
    """A new ticket for the server, when it is active on a host whose agent relays consoles."""
    now = services.clock()
    secret = secrets.token_urlsafe(32)
    with services.db.write() as s:
        inst = instance_for(s, instance_id, caller)
        if inst.state != "active" or inst.host_id is None:
            raise ApiError(
                409,
                f"server {inst.name} is {inst.state}: only an active server has a console "
                "(start it first; `server console-log` shows the log of any placed server)",
            )
        host = s.get(Host, inst.host_id)
        if host is None or host.engine != RTKVM_ENGINE:
            raise ApiError(409, f"server {inst.name}'s host is not run by rtkvm's agent")
        if host.console_address is None:
            raise ApiError(
                409,
                f"host {host.name}'s agent registered no console relay: upgrade or restart it "
                "(`rtkvm agent` relays consoles unless started with --no-console)",
            )
        address, port = split_address(host.console_address)
        s.execute(delete(ConsoleTicket).where(ConsoleTicket.expires_at < now - TICKETS_KEPT_S))
        s.add(
            ConsoleTicket(
                secret_hash=hash_secret(secret),
                instance_id=inst.id,
                host_id=host.id,
                user_id=caller.user_id or 0,
                created_at=now,
                expires_at=now + TICKET_TTL_S,
            )
        )
        return _Target(inst.id, inst.name, address, port, secret)


async def _open_relay(target: _Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    where = f"{target.host}:{target.port}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port, limit=LINE_MAX),
            CONNECT_TIMEOUT_S,
        )
    except (OSError, TimeoutError) as exc:
        raise ApiError(
            409,
            f"the console relay of server {target.name}'s host agent ({where}) cannot be "
            f"reached: {exc or 'timed out'}; is the agent running?",
        ) from None
    try:
        writer.write(hello(target.ticket))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), ANSWER_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        writer.close()
        raise ApiError(
            409, f"the console relay at {where} did not answer: {exc or 'timed out'}"
        ) from None
    why = parse_answer(line)
    if why is not None:
        writer.close()
        raise ApiError(409, f"server {target.name}'s console: {why}")
    return reader, writer


async def _relay(
    websocket: WebSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[int, int, str]:
    """Bytes both ways until one side ends: (bytes from the client, bytes to it, why)."""
    counts = [0, 0]

    async def up() -> str:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return "the client left"
            data = message.get("bytes")
            if data is None:
                data = (message.get("text") or "").encode()
            counts[0] += len(data)
            writer.write(data)
            await writer.drain()

    async def down() -> str:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return "the server's console closed (stopped, or the agent ended)"
            counts[1] += len(data)
            await websocket.send_bytes(data)

    tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    why = "ended"
    for task in done:
        try:
            why = task.result()
        except (OSError, WebSocketDisconnect, RuntimeError) as exc:
            why = f"broken: {exc!r}"
    writer.close()
    with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
        await websocket.close(code=1000, reason=why[:120])
    return counts[0], counts[1], why


async def _deny(websocket: WebSocket, status: int, detail: str) -> None:
    """An HTTP refusal of the handshake where the server can send one; else close (403)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse({"detail": detail}, status_code=status))
    else:
        await websocket.close(code=1008, reason=detail[:120])
