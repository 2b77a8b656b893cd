"""The API's gate for request bodies: a token first, then a bounded, well-formed JSON body.

An ASGI middleware in front of every route. For a request that carries a body
(POST, PUT, PATCH) it answers, before the routes or FastAPI read anything:

- 401 when there is no ``Authorization: Bearer`` header (the token itself is
  checked by the routes' dependencies, against the database);
- 413 when the body is larger than its route allows (``Content-Length``, or
  counted while it arrives), without holding more than that in memory;
- 422 when the body is JSON that no field of rtkvm can hold: nested deeper
  than :data:`MAX_DEPTH`, or with a lone UTF-16 surrogate in a string (JSON
  allows ``"\\ud800"``; PostgreSQL and every JSON encoder downstream refuse
  it, so one such report broke listings for everyone).

Routes that take a stream (:data:`STREAMED`: an image's data) get the token
check only: their route counts the body against its own limit as it writes
it to disk, so gigabytes are never held here.

Limits are data (:data:`DEFAULT_LIMIT`, :data:`ROUTE_LIMITS`). This module
must not know tokens or models.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MIB = 1024 * 1024
DEFAULT_LIMIT = 1 * MIB
"""Bytes a request body may have: flavors, networks, instances, host updates."""
ROUTE_LIMITS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^/v1/agent/measurements/[^/]+/state$"), 16 * MIB),  # histograms, raw samples
    (re.compile(r"^/v1/agent/host$"), 4 * MIB),  # the topology of a host with thousands of CPUs
    (re.compile(r"^/v1/agent/unknown$"), 2 * MIB),
)
"""Routes whose bodies are legitimately larger than the default."""
STREAMED: tuple[re.Pattern[str], ...] = (re.compile(r"^/v1/images/[^/]+/file$"),)
"""Routes whose body is data, not JSON: passed through as it arrives."""
MAX_DEPTH = 32
"""Nesting of JSON objects and arrays: rtkvm's deepest body (a measurement result) uses 6."""
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def limit_for(path: str) -> int:
    for pattern, limit in ROUTE_LIMITS:
        if pattern.match(path):
            return limit
    return DEFAULT_LIMIT


def json_problem(body: bytes) -> str | None:
    """Why a body no rtkvm field can hold is refused, or None (also for non-JSON: the
    route's own validation says what is wrong with that)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return f"the JSON body nests deeper than {MAX_DEPTH} levels: flatten it"
            children = list(item.items()) if isinstance(item, dict) else list(enumerate(item))
            for key, child in children:
                if isinstance(key, str) and _lone_surrogate(key):
                    return "a key of the JSON body holds a lone UTF-16 surrogate: send valid text"
                stack.append((child, depth + 1))
        elif isinstance(item, str) and _lone_surrogate(item):
            return "a string of the JSON body holds a lone UTF-16 surrogate: send valid text"
    return None


def _lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class BodyGuard:
    """ASGI middleware: see the module's docstring."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", b"").decode("latin-1")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            await _refuse(send, 401, "no API token: send Authorization: Bearer TOKEN")
            return
        path = str(scope.get("path", ""))
        if any(p.match(path) for p in STREAMED):
            await self.app(scope, receive, send)
            return
        limit = limit_for(path)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, 413, _too_large(limit))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(send, 413, _too_large(limit))
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        problem = json_problem(body)
        if problem is not None:
            await _refuse(send, 422, f"bad request: {problem}")
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> str:
    return f"the request body is larger than this route takes ({limit // 1024} KiB): send less"


async def _refuse(send: Send, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
