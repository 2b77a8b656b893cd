"""A server's interactive console: the API's websocket, tickets, the agent's relay, the CLI.

The relay is rtkvm's own (``rtkvm.agent.console``) on a real TCP port; the
guest's console socket is a small unix-socket server standing in for QEMU
(it greets, then answers each line in capitals). The whole path with
libvirt, QEMU and a Debian guest is the demo's (tests/e2e/test_demo_e2e.py).
"""

from __future__ import annotations

import select
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from fastapi import FastAPI
from starlette.testclient import TestClient, WebSocketDenialResponse

from rtkvm.agent.console import ConsoleRelay
from rtkvm.api.testing import ADMIN_TOKEN, Cloud, FakeClock, expect
from rtkvm.cli.main import cli
from rtkvm.errors import CloudError
from rtkvm.wire.agent_client import AgentClient
from rtkvm.wire.console import TICKET_TTL_S, hello, parse_answer
from rtkvm.wire.user_client import CloudClient

GREETING = b"Debian GNU/Linux 12 vm ttyS0\r\n\r\nvm login: "


class FakeQemu:
    """A console socket as QEMU serves it: one client at a time, output both ways."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rtc", dir="/tmp"))  # short: a socket path
        self.path = self.dir / "console.sock"
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        self.server.listen(4)
        self.received = bytearray()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(GREETING)
                self._converse(conn)

    def _converse(self, conn: socket.socket) -> None:
        """Each line typed comes back in capitals, then a prompt."""
        line = b""
        while data := conn.recv(1024):
            self.received += data
            line += data
            while b"\r" in line:
                one, _, line = line.partition(b"\r")
                conn.sendall(one.upper() + b"\r\n# ")

    def close(self) -> None:
        self.server.close()
        self.path.unlink(missing_ok=True)
        self.dir.rmdir()


@pytest.fixture
def qemu() -> Iterator[FakeQemu]:
    fake = FakeQemu()
    yield fake
    fake.close()


class Site:
    """A cloud with one host whose agent relays consoles, and alice's active server there."""

    def __init__(self, cloud: Cloud, qemu: FakeQemu) -> None:
        cloud.project("p1")
        cloud.project("p2")
        self.alice = cloud.member("alice", "p1")
        self.bob = cloud.member("bob", "p2")
        self.alice_token = str(self.alice.headers["Authorization"]).split()[1]
        cloud.flavor("rt1", 2)
        self.sockets: dict[str, Path] = {}
        self.relay = ConsoleRelay(
            "127.0.0.1:0",
            lambda t: AgentClient(http=self.agent).redeem_console(t),
            self.sockets.get,
        )
        self.agent = cloud.host("h1", console_address=self.relay.start())
        vm = expect(self.alice.post("/v1/instances", json={"name": "vm", "flavor": "rt1"}), 201)
        self.vm: dict[str, Any] = vm
        self.state("active")
        self.sockets[vm["id"]] = qemu.path

    def state(self, state: str) -> None:
        path = f"/v1/agent/instances/{self.vm['id']}/state"
        expect(self.agent.post(path, json={"state": state}), 200)

    @property
    def path(self) -> str:
        return f"/v1/instances/{self.vm['id']}/console"


@pytest.fixture
def site(cloud: Cloud, qemu: FakeQemu) -> Iterator[Site]:
    made = Site(cloud, qemu)
    yield made
    made.relay.stop()


def _denied(client: TestClient, path: str) -> tuple[int, str]:
    with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect(path):
        pass
    return refused.value.status_code, refused.value.json()["detail"]


def test_a_tenant_types_into_its_servers_console_through_the_api(
    site: Site, qemu: FakeQemu
) -> None:
    with site.alice.websocket_connect(site.path) as ws:
        assert ws.receive_bytes() == GREETING
        ws.send_bytes(b"root\r")
        assert ws.receive_bytes() == b"ROOT\r\n# "
        ws.send_text("uname -v\r")  # text frames are sent as their UTF-8 bytes
        assert ws.receive_bytes() == b"UNAME -V\r\n# "
    assert bytes(qemu.received) == b"root\runame -v\r"


def test_who_may_not_or_cannot_open_a_console_is_told_why(
    site: Site, cloud: Cloud, clock: FakeClock
) -> None:
    anonymous = cloud.client(None)
    status, detail = _denied(anonymous, site.path)
    assert status == 401 and "Authorization: Bearer" in detail
    assert _denied(site.bob, site.path)[0] == 404  # another project's server: not seen
    assert _denied(site.agent, site.path)[0] == 403
    assert _denied(site.alice, "/v1/instances/not-a-uuid/console")[0] == 404
    site.state("stopped")
    status, detail = _denied(site.alice, site.path)
    assert status == 409 and "is stopped" in detail and "start it first" in detail
    site.state("active")
    site.relay.stop()  # the agent is gone: its registered address refuses
    status, detail = _denied(site.alice, site.path)
    assert status == 409 and "cannot be reached" in detail and "agent running" in detail


def test_a_host_whose_agent_relays_no_console_says_so(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt1", 2)
    agent = cloud.host("h1")
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt1"}), 201)
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "active"}), 200)
    status, detail = _denied(alice, f"/v1/instances/{vm['id']}/console")
    assert status == 409 and "registered no console relay" in detail
    host = expect(cloud.admin.get("/v1/hosts/h1"), 200)
    assert host["console"] is False


def test_a_server_has_one_console_session_at_a_time(site: Site) -> None:
    with site.alice.websocket_connect(site.path) as ws:
        assert ws.receive_bytes() == GREETING
        status, detail = _denied(site.alice, site.path)
        assert status == 409 and "already open on server vm" in detail
    with site.alice.websocket_connect(site.path) as again:  # closed: it opens again
        assert again.receive_bytes() == GREETING


def test_a_ticket_opens_one_console_once_on_its_own_host_before_it_expires(
    site: Site, cloud: Cloud, clock: FakeClock
) -> None:
    from rtkvm.api.deps import Principal
    from rtkvm.api.routes.interactive_console import _ticket

    services = cloud.app.state.services
    alice = Principal(kind="user", user_id=1, user_name="admin", role="admin")
    mine = AgentClient(http=site.agent)
    other = AgentClient(http=cloud.host("h2"))

    ticket = _ticket(services, site.vm["id"], alice).ticket
    with pytest.raises(CloudError) as foreign:
        other.redeem_console(ticket)
    assert foreign.value.status == 404
    assert mine.redeem_console(ticket).name == "vm"
    with pytest.raises(CloudError) as twice:
        mine.redeem_console(ticket)
    assert twice.value.status == 409 and "used already" in str(twice.value)

    late = _ticket(services, site.vm["id"], alice).ticket
    clock.advance(TICKET_TTL_S + 1)
    with pytest.raises(CloudError) as expired:
        mine.redeem_console(late)
    assert expired.value.status == 409 and "expired" in str(expired.value)


def test_the_relay_refuses_what_is_not_its_protocol_or_its_ticket(site: Site) -> None:
    host, port = site.relay.address.rsplit(":", 1)
    for line, why in (
        (b"GET / HTTP/1.1\r\n", "not the rtkvm console protocol"),
        (hello("x" * 43), "the ticket was refused: unknown console ticket"),
    ):
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(line)
            answer = conn.recv(600)
        assert why in (parse_answer(answer) or ""), answer


# -- the client and the CLI over a real websocket (uvicorn, as `rtkvm cloud serve`) --


@pytest.fixture
def served(app: FastAPI) -> Iterator[str]:
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def test_the_cli_scripts_a_session_and_shows_the_apis_refusal(site: Site, served: str) -> None:
    alice = CloudClient(served, site.alice_token)
    steps = [
        "--chat",
        "login: ",
        "root\\r",
        "--chat",
        "# ",
        "uname -v\\r",
        "--chat",
        "V\\r\\n# ",
        "",
    ]
    result = CliRunner().invoke(
        cli, ["cloud", "server", "console", "vm", *steps, "--timeout", "10"],
        obj={"client": alice},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "vm login: ROOT\n# UNAME -V\n# " in result.output  # (the runner's newlines)

    waiting = CliRunner().invoke(
        cli, ["cloud", "server", "console", "vm", "--chat", "never shown", "", "--timeout", "1"],
        obj={"client": alice},
    )  # fmt: skip
    assert isinstance(waiting.exception, CloudError)  # `rtkvm` prints it and exits 2
    assert "did not show 'never shown' within 1 s" in str(waiting.exception)
    assert "vm login: " in str(waiting.exception)  # what it showed last

    bob = CloudClient(served, None)
    with pytest.raises(CloudError) as refused:
        bob.open_console(site.vm["id"])
    assert refused.value.status == 401 and "no API token" in str(refused.value)


def test_piped_input_goes_to_the_console_and_its_answer_is_shown(site: Site, served: str) -> None:
    alice = CloudClient(served, site.alice_token)
    result = CliRunner().invoke(
        cli, ["cloud", "server", "console", "vm", "--linger", "1"],
        input="hostname\r", obj={"client": alice},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "HOSTNAME\n# " in result.output


def test_the_admin_token_opens_any_projects_console(site: Site, cloud: Cloud) -> None:
    admin = cloud.client(ADMIN_TOKEN)
    with admin.websocket_connect(site.path) as ws:
        assert ws.receive_bytes() == GREETING


def test_a_server_whose_console_socket_is_gone_is_refused_with_why(site: Site) -> None:
    site.sockets[site.vm["id"]] = Path("/tmp/rtkvm-no-such-console.sock")
    status, detail = _denied(site.alice, site.path)
    assert status == 409 and "cannot be opened" in detail and "is the server running?" in detail


def test_a_console_socket_path_too_long_for_the_kernel_is_not_designed(tmp_path: Path) -> None:
    from rtkvm.agent.names import SOCKET_PATH_MAX, console_socket

    vm = "0b5d1f0e-8f7a-4c53-9f1e-6f3b2a1c0d9e"
    short = console_socket(Path("/var/lib/rtkvm/guests"), vm)
    assert short == Path(f"/var/lib/rtkvm/guests/rtkvm-{vm}.console.sock")
    assert console_socket(Path("/" + "d" * SOCKET_PATH_MAX), vm) is None


class QemuLikeConsole(FakeQemu):
    """QEMU's console socket with a guest slow to drain its serial port: the typed bytes are
    taken a while after they come, and what was not taken when the socket hangs up is
    dropped (QEMU closes the connection without handing it to the serial port)."""

    DELAY_S = 0.3

    def _converse(self, conn: socket.socket) -> None:
        poller = select.poll()
        poller.register(conn, select.POLLIN | select.POLLHUP | select.POLLRDHUP)
        while True:
            time.sleep(self.DELAY_S)  # the guest drains its UART slowly
            events = dict(poller.poll(1000)).get(conn.fileno(), 0)
            if events & (select.POLLHUP | select.POLLRDHUP):
                return  # hung up: what is still unread is lost
            if events & select.POLLIN:
                self.received += conn.recv(1024)


@pytest.fixture
def qemu_like() -> Iterator[QemuLikeConsole]:
    fake = QemuLikeConsole()
    yield fake
    fake.close()


def test_what_the_last_chat_step_types_reaches_the_guest_though_the_session_ends_at_once(
    cloud: Cloud, qemu_like: QemuLikeConsole, served: str
) -> None:
    site = Site(cloud, qemu_like)
    try:
        alice = CloudClient(served, site.alice_token)
        result = CliRunner().invoke(
            cli, ["cloud", "server", "console", "vm", "--chat", "login: ", "poweroff\\r"],
            obj={"client": alice},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        for _ in range(300):  # the relays pass it on after the CLI has left
            if b"poweroff\r" in qemu_like.received:
                break
            time.sleep(0.01)
        assert bytes(qemu_like.received) == b"poweroff\r"
    finally:
        site.relay.stop()
