"""A client's end of a server's interactive console: a websocket on the API.

:class:`ConsoleSession` connects with the caller's token (``Authorization:
Bearer``, as every request), sends bytes, receives bytes, and can wait for a
pattern (:meth:`ConsoleSession.expect`: what a script or a test needs to
log in and run a command on a serial line). A refusal comes back as the
API's ``{"detail": ...}`` in a :class:`~rtkvm.errors.CloudError` with its
HTTP status. This module must not print, touch the terminal or exit: the
CLI does.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from rtkvm.errors import CloudError

OPEN_TIMEOUT_S = 30.0
"""The API connects to the host's agent before it answers the handshake."""
KEEP_S = 1 << 20
"""How much output :meth:`ConsoleSession.expect` keeps to search (the end of it)."""


class ConsoleSession:
    """One open console; closed by :meth:`close` or as a context manager."""

    def __init__(self, url: str, token: str | None, *, ca_file: str | None = None) -> None:
        """``url``: the websocket URL (``ws://`` or ``wss://``) of the console route."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        context = ssl.create_default_context(cafile=ca_file) if url.startswith("wss://") else None
        try:
            self._opened = connect(
                url,
                additional_headers=headers,
                ssl=context,
                open_timeout=OPEN_TIMEOUT_S,
                max_size=None,
            )
            self._ws: ClientConnection = self._opened.__enter__()  # as `with connect(...)` does
        except InvalidStatus as exc:
            raise _refused(exc) from None
        except (OSError, TimeoutError, InvalidURI, WebSocketException) as exc:
            raise CloudError(f"cannot open the console at {url}: {exc}") from None
        self.seen = bytearray()
        """Output received and not yet consumed by :meth:`expect`."""
        self.echo: Callable[[bytes], None] | None = None
        """Called with every output :meth:`expect` receives (a transcript)."""

    def send(self, data: bytes) -> None:
        try:
            self._ws.send(data)
        except ConnectionClosed as exc:
            raise CloudError(f"the console closed: {_why(exc)}") from None

    def receive(self, timeout: float | None = None) -> bytes | None:
        """The next output (None when nothing came within ``timeout``); CloudError once the
        console closed."""
        try:
            message = self._ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise CloudError(f"the console closed: {_why(exc)}") from None
        return message.encode() if isinstance(message, str) else bytes(message)

    def expect(self, pattern: str, timeout: float) -> re.Match[bytes]:
        """Wait until the output matches ``pattern`` (a regular expression); the output up to
        the match's end is consumed. CloudError naming what was seen when it did not come."""
        wanted = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        while True:
            found = wanted.search(self.seen)
            if found is not None:
                del self.seen[: found.end()]
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                tail = bytes(self.seen[-200:]).decode("utf-8", "replace")
                raise CloudError(
                    f"the console did not show {pattern!r} within {timeout:.0f} s; "
                    f"its last output: {tail!r}"
                )
            data = self.receive(timeout=min(left, 1.0))
            if data:
                if self.echo is not None:
                    self.echo(data)
                self.seen += data
                del self.seen[:-KEEP_S]

    def close(self) -> None:
        self._opened.__exit__(None, None, None)

    def __enter__(self) -> ConsoleSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _refused(exc: InvalidStatus) -> CloudError:
    status = exc.response.status_code
    try:
        detail = json.loads(exc.response.body or b"{}").get("detail")
    except (ValueError, AttributeError):
        detail = None
    if not detail:
        detail = (exc.response.body or b"").decode("utf-8", "replace")[:300] or "refused"
    return CloudError(f"{detail} (HTTP {status})", status)


def _why(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    if frame is None:
        return "the connection was lost"
    return frame.reason or f"code {frame.code}"
