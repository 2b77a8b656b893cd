"""Real API server processes for tests: a free port, ``rtkvm cloud serve`` started on it,
and a wait until it answers (or a failure that shows its log).

Used by the tests that need the real server: races between two processes, TLS,
connection deadlines, agents. Nothing here may be imported by production code.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from rtkvm.wire.http import API_ROOT

RTKVM = str(Path(sys.executable).with_name("rtkvm"))
"""The ``rtkvm`` entry point of the interpreter running the tests."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_api(
    url: str,
    port: int,
    log: Path,
    *,
    admin_token: str,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """``rtkvm cloud serve`` on ``url`` (a database URL), its output appended to ``log``."""
    return subprocess.Popen(
        [RTKVM, "cloud", "serve", "--database", url, "--listen", f"127.0.0.1:{port}", *args],
        env={**os.environ, "RTKVM_ADMIN_TOKEN": admin_token, **(env or {})},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_up(port: int, proc: subprocess.Popen[bytes], log: Path, limit: float = 30) -> None:
    """Return once a plain HTTP ``GET`` of the API root answers 200; AssertionError with
    the log if the process exits or does not answer within ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"API on {port} exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{API_ROOT}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"API on {port} not up in {limit} s: {log.read_text()}")
