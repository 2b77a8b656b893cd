"""The agent's console relay: from the API's connection to a guest's serial console socket.

:class:`ConsoleRelay` listens on a TCP address the agent registers. For each
connection it reads the API's one line (``rtkvm.wire.console``), redeems the
ticket through the API (only a ticket made for a server of this host, once,
before it expires), connects to that server's console socket (QEMU serves
it, ``rtkvm.agent.names.console_socket``), answers ``OK`` and copies bytes
both ways until either side closes. When the user's side closes first, the
guest's socket stays open a moment (:data:`LAST_WORDS_S`): QEMU hands typed
bytes to the serial port only as fast as the guest drains it, and drops what
it has not handed on when its socket hangs up, so a command typed just before
leaving would be lost. One session per server at a time: a
second is refused with the reason, as QEMU would hold it in its backlog. A
refusal is an ``ERR`` line. Each session runs on its own thread, so the
agent's loop never waits for a console. This module must not talk to
libvirt or decide who may open a console: the API does.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rtkvm.errors import CloudError
from rtkvm.wire.console import (
    LINE_MAX,
    ConsoleTicketOut,
    answer_err,
    answer_ok,
    join_address,
    parse_hello,
    split_address,
)

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0
"""How long a new connection has to send its line."""
CHUNK = 65536
LAST_WORDS_S = 1.0
"""After the user's side closed: how long the guest's socket stays open (its output read
and dropped) so that QEMU hands the last bytes typed to the guest's serial port."""

Redeem = Callable[[str], ConsoleTicketOut]
SocketOf = Callable[[str], Path | None]


class ConsoleRelay:
    """Listens on ``listen`` (``HOST:PORT``; port 0 picks one) until :meth:`stop`."""

    def __init__(
        self,
        listen: str,
        redeem: Redeem,
        socket_of: SocketOf,
        *,
        advertise: str | None = None,
    ) -> None:
        """``advertise``: the host name or address the API should connect to, when the
        relay listens on a wildcard address (default: the listening address)."""
        self._listen = split_address(listen, any_port=True)
        self._redeem = redeem
        self._socket_of = socket_of
        self._advertise = advertise
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._open: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.address = ""
        """``HOST:PORT`` to register, once started."""

    def start(self) -> str:
        """Bind and serve in a thread; the address to register."""
        host, port = self._listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            server = socket.create_server((host, port), family=family, backlog=16)
        except OSError as exc:
            raise OSError(
                f"the console relay cannot listen on {join_address(host, port)}: {exc} "
                "(choose another --console-listen, or --no-console)"
            ) from None
        self._server = server
        bound_port = server.getsockname()[1]
        shown = self._advertise or host
        if shown in ("0.0.0.0", "::"):
            shown = socket.getfqdn()
        self.address = join_address(shown, bound_port)
        self._thread = threading.Thread(target=self._accept, name="console-relay", daemon=True)
        self._thread.start()
        log.info(
            "console relay listening on %s (registered as %s)", server.getsockname(), self.address
        )
        return self.address

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def sessions(self) -> set[str]:
        """Ids of the servers whose console is open now."""
        with self._lock:
            return set(self._open)

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                conn, peer = self._server.accept()
            except OSError:
                return  # closed by stop()
            threading.Thread(
                target=self._serve, args=(conn, peer), name="console-session", daemon=True
            ).start()

    def _serve(self, conn: socket.socket, peer: object) -> None:
        with conn:
            conn.settimeout(HELLO_TIMEOUT_S)
            try:
                line = _read_line(conn)
            except OSError as exc:
                log.warning("console relay: %s sent no line: %s", peer, exc)
                return
            ticket = parse_hello(line)
            if ticket is None:
                _say(conn, answer_err("not the rtkvm console protocol"))
                return
            try:
                target = self._redeem(ticket)
            except CloudError as exc:
                _say(conn, answer_err(f"the ticket was refused: {exc}"))
                return
            with self._lock:
                if target.instance_id in self._open:
                    busy = True
                else:
                    busy = False
                    self._open.add(target.instance_id)
            if busy:
                _say(
                    conn,
                    answer_err(
                        f"a console session is already open on server {target.name}: "
                        "close it first (one at a time, as on a serial line)"
                    ),
                )
                return

            def release() -> None:
                with self._lock:
                    self._open.discard(target.instance_id)

            try:
                self._session(conn, target, release)
            finally:
                release()

    def _session(
        self, conn: socket.socket, target: ConsoleTicketOut, release: Callable[[], None]
    ) -> None:
        """Relay one session; ``release`` frees the server's slot (before the last words)."""
        path = self._socket_of(target.instance_id)
        if path is None:
            _say(conn, answer_err(f"server {target.name} has no console socket on this host"))
            return
        guest = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        guest.settimeout(5)
        try:
            guest.connect(str(path))
        except OSError as exc:
            guest.close()
            _say(
                conn,
                answer_err(
                    f"server {target.name}'s console socket {path} cannot be opened: "
                    f"{exc.strerror or exc} (is the server running?)"
                ),
            )
            return
        with guest:
            if not _say(conn, answer_ok()):
                return
            started = time.monotonic()
            log.info("console of server %s (%s) open", target.name, target.instance_id)
            *moved, user_left = _splice(conn, guest, self._stopping)
            log.info(
                "console of server %s closed after %.0f s (%d bytes in, %d out)",
                target.name,
                time.monotonic() - started,
                *moved,
            )
            if user_left:  # a next session may open meanwhile: QEMU queues it
                release()
                _hold(guest, LAST_WORDS_S)


def _read_line(conn: socket.socket) -> bytes:
    """Up to the first newline, at most LINE_MAX bytes (no byte after it is read)."""
    data = bytearray()
    while len(data) < LINE_MAX:
        byte = conn.recv(1)
        if not byte:
            break
        data += byte
        if byte == b"\n":
            break
    return bytes(data)


def _say(conn: socket.socket, line: bytes) -> bool:
    try:
        conn.sendall(line)
        return True
    except OSError:
        return False


def _splice(
    client: socket.socket, guest: socket.socket, stopping: threading.Event
) -> tuple[int, int, bool]:
    """Copy both ways until a side closes or the relay stops: (bytes in, bytes out, whether
    the user's side closed first)."""
    client.settimeout(None)
    guest.settimeout(None)
    moved = {client: 0, guest: 0}
    other = {client: guest, guest: client}
    with selectors.DefaultSelector() as sel:
        sel.register(client, selectors.EVENT_READ)
        sel.register(guest, selectors.EVENT_READ)
        while not stopping.is_set():
            for key, _ in sel.select(timeout=1.0):
                side: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = side.recv(CHUNK)
                    if data:
                        other[side].sendall(data)
                except OSError:
                    data = b""
                if not data:
                    return moved[client], moved[guest], side is client
                moved[side] += len(data)
    return moved[client], moved[guest], False


def _hold(guest: socket.socket, seconds: float) -> None:
    """Keep the guest's socket open ``seconds``, reading (and dropping) what it says."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        guest.settimeout(left)
        try:
            if not guest.recv(CHUNK):
                return  # the guest's side closed: nothing to wait for
        except (TimeoutError, OSError):
            return
