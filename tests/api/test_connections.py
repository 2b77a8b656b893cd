"""The real server closes connections that do not send a whole request in time: silent
ones, ones that trickle headers a byte at a time, ones that stop inside a body, and idle
keep-alive ones that trickle after a response; and one address cannot hold more than its
share of connections. Clients that do send keep being served."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rtkvm.testing.apiproc import free_port, start_api, wait_up

ADMIN = "rtk_conn-admin-token-0123456789abcdefghijklmnopqrstu"
DEADLINE_S = 2.0
PER_SOURCE = 80


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port, log = free_port(), tmp_path / "api.log"
    proc = start_api(
        f"sqlite:///{tmp_path}/rtkvm.db",
        port,
        log,
        admin_token=ADMIN,
        env={
            "RTKVM_REQUEST_TIMEOUT": str(DEADLINE_S),
            "RTKVM_CONNECTIONS_PER_SOURCE": str(PER_SOURCE),
        },
        args=("--access-log",),
    )
    try:
        wait_up(port, proc, log)
        yield port, log
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _open(port: int, first: bytes = b"", source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    if first:
        sock.sendall(first)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed the connection (EOF or reset), without waiting; what
    it sent before (the rest of an earlier response) is read past."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_connections_that_owe_a_request_are_closed_and_others_are_served(
    server: tuple[int, Path],
) -> None:
    port, log = server
    silent = [_open(port) for _ in range(40)]
    headers = [_open(port, b"GET /v1 HTTP/1.1\r\nHost: x\r\n") for _ in range(10)]
    body = [
        _open(port, b"POST /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                    + ADMIN.encode() + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100\r\n\r\n{\"na")
        for _ in range(10)
    ]  # fmt: skip
    kept = _open(port, b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert kept.recv(65536).startswith(b"HTTP/1.1 200")
    trickling = [*headers, kept]
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE_S + 1.5:
        for sock in trickling:  # a byte now and then must not keep a connection open
            with contextlib.suppress(OSError):
                sock.sendall(b"X")
        time.sleep(0.25)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        assert client.get("/v1").status_code == 200  # a client that sends is still served
    groups = {"silent": silent, "headers": headers, "body": body, "kept": [kept]}
    still = {name: sum(not _closed_by_server(s) for s in socks) for name, socks in groups.items()}
    for socks in groups.values():
        for sock in socks:
            sock.close()
    assert still == dict.fromkeys(groups, 0), f"connections that owed a request still open: {still}"
    text = log.read_text()
    assert "it sent no request after 2 s" in text
    assert "its request was incomplete after 2 s" in text


def test_a_slow_but_timely_request_is_answered(server: tuple[int, Path]) -> None:
    port, _ = server
    sock = _open(port)
    for piece in (b"GET /v1 HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
        time.sleep(DEADLINE_S / 4)
        sock.sendall(piece)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.close()


def test_one_address_holds_only_its_share_and_others_are_still_served(
    server: tuple[int, Path],
) -> None:
    port, log = server
    crowd = [_open(port, source="127.0.0.2") for _ in range(PER_SOURCE + 40)]
    time.sleep(0.5)
    refused = [s for s in crowd if _closed_by_server(s)]
    assert len(refused) == 40
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        assert client.get("/v1").status_code == 200  # another address is not affected
    for sock in crowd:
        sock.close()
    time.sleep(0.5)
    again = _open(port, b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n", source="127.0.0.2")
    assert again.recv(65536).startswith(b"HTTP/1.1 200")  # its share is back once closed
    again.close()
    assert log.read_text().count("refused connections from 127.0.0.2") == 1  # once a minute
