"""The runner's halves of a round trip across hosts, on fake libvirt domains: the peer's
host serves until told the client's half ended; the client's host measures alone."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rtkvm.agent.measure import MeasurementRunner
from rtkvm.agent.names import domain_name
from rtkvm.errors import GuestError, MeasureError
from rtkvm.hostfs import HostFS
from rtkvm.wire.images import ImageRef
from rtkvm.wire.measure import AgentMeasurement

from .measure_fakes import FakeConn, instance, measurement, rtt_report

ADDRS = {"client_address": "192.0.2.11/24", "server_address": "192.0.2.12/24"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _runner(conn: FakeConn, clock: Clock, **kw: Any) -> MeasurementRunner:
    return MeasurementRunner(
        conn.connect, HostFS(Path(__file__).parent), timeout=30.0, clock=clock,
        sleep=clock.sleep, **kw,
    )  # fmt: skip


def _half(role: str, *, tenant: bool = False) -> AgentMeasurement:
    ref = {
        "id": str(uuid.uuid4()), "name": "debian-rt", "disk_format": "qcow2",
        "size_bytes": 1 << 20, "virtual_size_bytes": 1 << 30, "sha256": "0" * 64,
    }  # fmt: skip
    image = {"image_ref": ImageRef.model_validate(ref)} if tenant else {}
    client, peer = instance("a", **image), instance("b", **image)
    m = measurement("rtt", client, peer, seconds=5, **ADDRS)
    return m.model_copy(update={"role": role})


def _served() -> tuple[FakeConn, Clock, AgentMeasurement]:
    """A serving half whose probe peer's domain is on this host."""
    conn, clock, m = FakeConn(), Clock(), _half("serve")
    assert m.peer is not None
    conn.add(m.peer.id)
    return conn, clock, m


@contextlib.contextmanager
def _serving(*_: Any, **__: Any) -> Iterator[None]:
    """A sockperf server that comes up at once."""
    yield


def test_a_probe_peer_serves_until_the_clients_half_ended_then_starts_again() -> None:
    conn, clock = FakeConn(), Clock()
    m = _half("serve")
    assert m.peer is not None
    name = domain_name(m.peer.id)
    conn.add(m.peer.id)
    said: list[str] = []

    @contextlib.contextmanager
    def serving(c: FakeConn, guest: str, ip: str, **kw: Any) -> Iterator[None]:
        said.append(f"serve {guest} {ip} {kw['address']} running={c.domains[guest].running}")
        yield
        said.append("server stopped")

    answers = iter([False, False, True])
    done = _runner(conn, clock, serving=serving).serve(
        m, lambda: said.append("ready"), lambda: next(answers)
    )
    assert done.state == "done", done.fault
    assert done.result == {"role": "server", "method": "probe-reboot", "address": "192.0.2.12/24"}
    assert said == [f"serve {name} 192.0.2.12 192.0.2.12/24 running=False", "ready",
                    "server stopped"]  # fmt: skip
    assert conn.events == [f"stop {name}", f"start {name}"]
    assert clock.now == 4.0  # two polls of 2 s


def test_a_peer_whose_client_never_ends_stops_serving_at_the_deadline() -> None:
    conn, clock, m = _served()
    done = _runner(conn, clock, serving=_serving).serve(m, lambda: None, lambda: False)
    assert done.state == "error"
    assert "the client's half did not end in time: stopped serving" in (done.fault or "")
    assert clock.now >= 30.0 + 5 + 120.0  # boot timeout + run + slack
    name = domain_name(m.peer.id)
    assert conn.events == [f"stop {name}", f"start {name}"]  # started again all the same


def test_a_tenants_peer_serves_through_its_guest_agent_and_keeps_running() -> None:
    conn, clock = FakeConn(), Clock()
    m = _half("serve", tenant=True)
    assert m.peer is not None
    conn.add(m.peer.id)
    calls: list[tuple[str, dict[str, Any]]] = []

    @contextlib.contextmanager
    def serving_running(_c: Any, guest: str, **kw: Any) -> Iterator[dict[str, Any]]:
        calls.append((guest, kw))
        facts: dict[str, Any] = {"role": "server", "method": "guest-agent"}
        yield facts
        facts["guest_uptime_s"] = {"b": [10.0, 20.0]}

    runner = _runner(conn, clock, serving_running=serving_running)
    done = runner.serve(m, lambda: None, lambda: True)
    assert done.state == "done", done.fault
    assert done.result == {
        "role": "server", "method": "guest-agent", "guest_uptime_s": {"b": [10.0, 20.0]}
    }  # fmt: skip
    assert calls == [(domain_name(m.peer.id), {"server_address": "192.0.2.12/24", "label": "b"})]
    assert conn.events == []  # a tenant's system is never stopped


def test_a_peer_that_cannot_serve_says_why_and_never_says_ready() -> None:
    conn, clock = FakeConn(), Clock()
    m = _half("serve")
    assert m.peer is not None
    conn.add(m.peer.id)

    @contextlib.contextmanager
    def serving(*_: Any, **__: Any) -> Iterator[None]:
        raise MeasureError("the sockperf server in guest 'b' did not bind (rc=1)")
        yield

    said: list[str] = []
    runner = _runner(conn, clock, serving=serving)
    done = runner.serve(m, lambda: said.append("ready"), lambda: True)
    assert done.state == "error" and said == []
    assert done.fault == "serving b failed: the sockperf server in guest 'b' did not bind (rc=1)"
    assert not _runner(conn, clock).serve(_half("client"), lambda: None, lambda: True).result


def test_the_clients_half_measures_from_the_client_alone() -> None:
    conn, clock = FakeConn(), Clock()
    m = _half("client")
    conn.add(m.server.id)  # the peer is on the other host
    calls: list[tuple[Any, ...]] = []

    def rtt_client(_c: Any, client: str, ip: str, server_name: str, **kw: Any) -> Any:
        calls.append((client, ip, server_name, kw["address"], kw["seconds"]))
        return rtt_report(f"guest {client} -> {server_name} ({ip})")

    done = _runner(conn, clock, rtt_client=rtt_client).run(m)
    assert done.state == "done", done.fault
    name = domain_name(m.server.id)
    assert calls == [(name, "192.0.2.12", "guest b", "192.0.2.11/24", 5)]
    assert done.result is not None and done.result["method"] == "probe-reboot"
    assert done.result["samples"] == 3
    assert conn.events == [f"stop {name}", f"start {name}"]


def test_a_tenants_client_half_runs_through_its_guest_agent() -> None:
    conn, clock = FakeConn(), Clock()
    m = _half("client", tenant=True)
    conn.add(m.server.id)
    calls: list[tuple[Any, ...]] = []

    def client_running(_c: Any, client: str, ip: str, **kw: Any) -> dict[str, Any]:
        calls.append((client, ip, kw["client_address"], kw["server_label"]))
        return {"method": "guest-agent", "samples": 5000}

    done = _runner(conn, clock, client_running=client_running).run(m)
    assert done.state == "done", done.fault
    assert calls == [(domain_name(m.server.id), "192.0.2.12", "192.0.2.11/24", "b")]
    assert conn.events == []

    def fails(*_: Any, **__: Any) -> dict[str, Any]:
        raise GuestError("a does not have 192.0.2.11/24 on any interface")

    failed = _runner(conn, clock, client_running=fails).run(m)
    assert failed.state == "error"
    assert failed.fault == "rtt a -> b failed: a does not have 192.0.2.11/24 on any interface"


def test_a_probe_peer_is_started_again_whatever_broke_while_it_served() -> None:
    conn, clock, m = _served()

    def finished() -> bool:
        raise KeyError("a bug in the loop")

    done = _runner(conn, clock, serving=_serving).serve(m, lambda: None, finished)
    assert done.state == "error"
    assert done.fault == "serving b failed: KeyError('a bug in the loop')"
    name = domain_name(m.peer.id)
    assert conn.events == [f"stop {name}", f"start {name}"]
