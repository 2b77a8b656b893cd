"""Probe: a crowd of connections that never send a request, against a real API server.

Starts ``rtkvm cloud serve`` (SQLite, default settings unless ``--deadline``),
opens ``--connections`` TCP connections from ten addresses that send nothing (and, with
``--trickle``, a tenth that send a header byte every second), and prints how
many the server still holds open after ``--after`` seconds, plus the latency
of a well-behaved client's ``GET /v1`` before, during and after the crowd.
Run with ``.venv/bin/python benchmarks/connections.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from rtkvm.testing.apiproc import free_port, start_api, wait_up

CROWD_SOURCES = tuple(f"127.0.1.{n}" for n in range(1, 11))
"""Ten loopback addresses the crowd comes from (the measuring client uses 127.0.0.1)."""
ADMIN = "rtk_bench-admin-token-0123456789abcdefghijklmnopqrs"


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def _latency_ms(port: int, n: int = 20) -> str:
    times = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            status = client.get("/v1").status_code
            times.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                return f"answered {status}"
    return f"p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=1200)
    parser.add_argument("--after", type=float, default=70.0)
    parser.add_argument("--deadline", type=float, default=None, help="RTKVM_REQUEST_TIMEOUT")
    parser.add_argument("--trickle", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtkvm-bench-") as tmp:
        port, log = free_port(), Path(tmp) / "api.log"
        env = {} if args.deadline is None else {"RTKVM_REQUEST_TIMEOUT": str(args.deadline)}
        proc = start_api(f"sqlite:///{tmp}/rtkvm.db", port, log, admin_token=ADMIN, env=env)
        try:
            wait_up(port, proc, log)
            print(f"before the crowd: GET /v1 {_latency_ms(port)}")
            crowd = [
                socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
                for source in CROWD_SOURCES
                for _ in range(args.connections // len(CROWD_SOURCES))
            ]
            slow = crowd[: len(crowd) // 10] if args.trickle else []
            for sock in slow:
                sock.sendall(b"GET /v1 HTTP/1.1\r\n")
            print(f"{len(crowd)} connections opened ({len(slow)} trickling a header byte/s)")
            print(f"during the crowd: GET /v1 {_latency_ms(port)}")
            started = time.monotonic()
            while time.monotonic() - started < args.after:
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"X")
                time.sleep(1)
            open_now = sum(_still_open(s) for s in crowd)
            print(f"after {args.after:g} s: {open_now} of {len(crowd)} still open on the server")
            print(f"after the crowd: GET /v1 {_latency_ms(port)}")
            for sock in crowd:
                sock.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            if proc.returncode not in (0, -15):
                raise SystemExit(f"the server exited {proc.returncode}: {log.read_text()}")
        if open_now:
            raise SystemExit("FAILED: connections that sent no whole request are still held")


if __name__ == "__main__":
    main()
