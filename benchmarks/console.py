"""Benchmark: opening a server's interactive console, and a keystroke's echo through it.

The path is rtkvm's whole console path but QEMU: the client's websocket
(``rtkvm.wire.console_client``) to a real API served by uvicorn on SQLite,
the API's ticket and its connection to the agent's relay
(``rtkvm.agent.console`` on TCP), the relay's redeem through the API, and a
unix socket standing in for QEMU's serial line that echoes each byte (a
guest's terminal echo, without the guest). Prints the time to open a console
(``--opens`` times) and the round trip of one byte (``--echoes`` times) as
percentiles, and exits non-zero if any open or echo failed. Run
``.venv/bin/python benchmarks/console.py``.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from rtkvm.agent.console import ConsoleRelay
from rtkvm.api.app import create_app
from rtkvm.api.testing import ADMIN_TOKEN, Cloud, expect
from rtkvm.settings import Settings
from rtkvm.wire.agent_client import AgentClient
from rtkvm.wire.user_client import CloudClient


def _echo_server(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return server


def _percentiles(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    print(
        f"{name}: n={len(ms)} min {ms[0]:.2f} p50 {q[49]:.2f} p99 {q[98]:.2f} max {ms[-1]:.2f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=50)
    parser.add_argument("--echoes", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rtkcb", dir="/tmp"))
    app = create_app(
        Settings(
            database_url=f"sqlite:///{work}/bench.db",
            bootstrap_admin_token=ADMIN_TOKEN,
            image_store_dir=str(work / "images"),
        )
    )
    cloud = Cloud(app)
    sockets: dict[str, Path] = {}
    holder: list[AgentClient] = []
    relay = ConsoleRelay("127.0.0.1:0", lambda t: holder[0].redeem_console(t), sockets.get)
    agent = cloud.host("h1", console_address=relay.start())
    holder.append(AgentClient(http=agent))
    cloud.project("p1")
    cloud.flavor("rt2", 2)
    vm = cloud.api.create_server("vm", "rt2", [], project="p1")
    expect(agent.post(f"/v1/agent/instances/{vm.id}/state", json={"state": "active"}), 200)
    echo = _echo_server(work / "console.sock")
    sockets[vm.id] = work / "console.sock"

    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    client = CloudClient(f"http://127.0.0.1:{sock.getsockname()[1]}", ADMIN_TOKEN)
    try:
        opens: list[float] = []
        for _ in range(args.opens):
            started = time.perf_counter()
            with client.open_console(vm.id):
                opens.append(time.perf_counter() - started)
            while relay.sessions():  # the relay sees the close a moment later
                time.sleep(0.001)
        echoes: list[float] = []
        with client.open_console(vm.id) as session:
            for _ in range(args.echoes):
                started = time.perf_counter()
                session.send(b"x")
                got = session.receive(timeout=5)
                if got != b"x":
                    print(f"console bench: an echo came back as {got!r}", file=sys.stderr)
                    return 1
                echoes.append(time.perf_counter() - started)
    finally:
        server.should_exit = True
        relay.stop()
        echo.close()
        cloud.close()
    print("console path: websocket -> API (uvicorn, SQLite) -> agent relay (TCP) -> unix socket")
    _percentiles("open (ticket, relay, redeem, websocket)", opens)
    _percentiles("one byte echoed (keystroke to screen, no guest)", echoes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
