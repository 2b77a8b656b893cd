"""The API server's HTTP connections: bounded per source, each request whole in time.

uvicorn closes a connection that idles after a response (its keep-alive
timeout), but not one that never sends a request, nor one that sends a byte
now and then (any data cancels its keep-alive timer): 1,200 such connections
were still open after 70 s. :class:`DeadlineH11Protocol` gives every request
a deadline, counted from the moment the server is ready for it (the
connection is made, or the previous response is sent) until its last body
byte: data trickling in does not extend it. When it passes, the connection
is closed and one line is logged (the client's address and what was missing).

One source address may hold at most ``per_source`` connections at once; more
are closed as they arrive (logged once a minute per address), so one client
cannot take the whole server's connection budget (``limit_concurrency``,
past which uvicorn answers 503 to everyone) while the others wait out their
deadline.

Used by ``rtkvm cloud serve``. This module must not know routes, tokens or
the database; the deadline's length is :class:`rtkvm.settings.Settings`'.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("rtkvm.api.connections")

READING = (h11.IDLE, h11.SEND_BODY)
"""The client's states in which the server waits for (more of) its request."""


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on reading each request."""

    read_timeout_s: ClassVar[float] = 30.0
    """Seconds a client has to send one whole request (headers and body)."""
    per_source: ClassVar[int] = 256
    """Connections one source address may hold at once."""
    _open: ClassVar[Counter[str]] = Counter()
    _refusal_logged: ClassVar[dict[str, float]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._source: str | None = None

    @classmethod
    def configured(cls, read_timeout_s: float, per_source: int) -> type[DeadlineH11Protocol]:
        """The protocol class with its own limits and counters (uvicorn takes a class)."""
        attrs = {
            "read_timeout_s": read_timeout_s,
            "per_source": per_source,
            "_open": Counter(),
            "_refusal_logged": {},
        }
        return type(cls.__name__, (cls,), attrs)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        source = self.client[0] if self.client else "unknown"
        if self._open[source] >= self.per_source:
            self._refuse(source)
            return
        self._source = source
        self._open[source] += 1
        self._follow()

    def _refuse(self, source: str) -> None:
        now = time.monotonic()
        if now - self._refusal_logged.get(source, -60.0) >= 60.0:
            if len(self._refusal_logged) > 10_000:
                self._refusal_logged.clear()
            self._refusal_logged[source] = now
            log.warning(
                "refused connections from %s: it holds %d, the most one address may "
                "(said once a minute)",
                source,
                self.per_source,
            )
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._source is not None:
            self._open[self._source] -= 1
            if self._open[self._source] <= 0:
                del self._open[self._source]
            self._source = None
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arm the deadline while the client owes a request, disarm it once it is in."""
        if self.transport.is_closing():
            self._disarm()
        elif self.conn.their_state in READING:
            if self._deadline is None:
                self._deadline = self.loop.call_later(self.read_timeout_s, self._expired)
        else:
            self._disarm()

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        started = self.conn.their_state is h11.SEND_BODY or bool(self.conn.trailing_data[0])
        what = "its request was incomplete" if started else "it sent no request"
        where = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.info(
            "closed the connection of %s: %s after %g s", where, what, float(self.read_timeout_s)
        )
        self.transport.close()  # connection_lost tells a route still reading the body
