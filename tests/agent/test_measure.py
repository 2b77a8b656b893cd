"""The measurement runner on fake libvirt domains: stop, measure, ALWAYS start again."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from rtkvm.agent.measure import MeasurementRunner, strip_run_words
from rtkvm.agent.names import domain_name
from rtkvm.errors import GuestError
from rtkvm.guest.run import CyclictestParams, Measurement
from rtkvm.hostfs import HostFS
from rtkvm.net.rtt import DEFAULT_BUCKET_US, DEFAULT_MPS, RttReport
from rtkvm.wire.images import ImageRef

from .measure_fakes import (
    FakeConn,
    cyclictest_measurement,
    instance,
    measurement,
    rtt_report,
    xml_of,
)


def _runner(conn: FakeConn, **kw: Any) -> MeasurementRunner:
    return MeasurementRunner(conn.connect, HostFS(Path(__file__).parent), timeout=30.0, **kw)


def test_cyclictest_stops_measures_and_starts_the_instance_again() -> None:
    conn = FakeConn()
    vm = instance("vm", rt_waiver="host node1: SMT on")
    conn.add(vm.id)
    calls: list[tuple[str, CyclictestParams, float, bool]] = []

    def measure(c: FakeConn, _fs: HostFS, name: str, params: CyclictestParams, **kw: Any) -> Any:
        calls.append((name, params, kw["timeout"], c.domains[name].running))
        return cyclictest_measurement(name, accel="tcg")

    m = measurement("cyclictest", vm, loops=500, interval_us=200, buckets=100, priority=80)
    done = _runner(conn, measure=measure).run(m)
    assert done.state == "done", done.fault
    name = domain_name(vm.id)
    assert calls == [(name, CyclictestParams(500, 200, 100, 80), 30.0, False)]
    assert conn.events == [f"stop {name}", f"start {name}"]
    assert done.result is not None
    assert set(done.result) == {
        "guest", "accel", "boot_seconds", "run_seconds", "guest_realtime", "cyclictest",
        "latency", "verify", "warnings",
    }  # fmt: skip
    assert done.result["guest"] == name and done.result["accel"] == "tcg"
    assert done.result["latency"]["threads"][0]["max_us"] > 0
    warnings = done.result["warnings"]
    assert not any("waiver" in w for w in warnings)  # the API attaches the host's waiver
    assert any("TCG" in w for w in warnings)
    json.dumps(done.result)  # what the loop sends


def test_cyclictest_defaults_fill_missing_params() -> None:
    conn = FakeConn()
    vm = instance()
    conn.add(vm.id)
    seen: list[CyclictestParams] = []

    def measure(_c: Any, _fs: Any, name: str, params: CyclictestParams, **_: Any) -> Measurement:
        seen.append(params)
        return cyclictest_measurement(name)

    done = _runner(conn, measure=measure).run(measurement("cyclictest", vm))
    assert done.state == "done"
    assert done.result is not None
    assert not any("waiver" in w for w in done.result["warnings"])
    assert seen == [CyclictestParams(3000, 1000, 2000, 90)]  # the API's defaults


def test_rtt_runs_between_both_instances_with_run_addresses() -> None:
    conn = FakeConn()
    client, server = instance("client"), instance("server", rt_waiver="no isolation")
    conn.add(client.id)
    conn.add(server.id)
    calls: list[dict[str, Any]] = []

    def rtt(c: FakeConn, name: str, server_ip: str, **kw: Any) -> RttReport:
        running = {n: d.running for n, d in c.domains.items()}
        calls.append({"client": name, "server_ip": server_ip, "running": running, **kw})
        return rtt_report(f"guest {name} -> {kw['server_guest']}", kw["warnings"])

    m = measurement(
        "rtt", client, server, seconds=2, mps=500, bucket_us=5.0,
        client_address="10.9.0.1/24", server_address="10.9.0.2/24",
    )  # fmt: skip
    done = _runner(conn, rtt=rtt).run(m)
    assert done.state == "done", done.fault
    [call] = calls
    assert call["client"] == domain_name(client.id)
    assert call["server_guest"] == domain_name(server.id)
    assert call["server_ip"] == "10.9.0.2"
    assert (call["client_address"], call["server_address"]) == ("10.9.0.1/24", "10.9.0.2/24")
    assert (call["seconds"], call["mps"], call["bucket_us"]) == (2, 500, 5.0)
    assert set(call["running"].values()) == {False}  # both stopped for the run
    assert all(d.running for d in conn.domains.values())  # and started again
    assert done.result is not None
    assert done.result["path"].startswith("guest rtkvm-")
    assert done.result["max_us"] == 12.0
    assert done.result["warnings"] == []  # the waiver is the API's to show, not the run's
    json.dumps(done.result)


def test_a_failed_measurement_still_starts_the_domains_again() -> None:
    conn = FakeConn()
    client, server = instance("client"), instance("server")
    conn.add(client.id)
    conn.add(server.id)

    def rtt(*_: Any, **__: Any) -> RttReport:
        raise GuestError("guest 'rtkvm-x' could not set up eth0: no link")

    done = _runner(conn, rtt=rtt).run(measurement("rtt", client, server))
    assert done.state == "error"
    assert done.fault == "rtt measurement failed: guest 'rtkvm-x' could not set up eth0: no link"
    assert all(d.running for d in conn.domains.values())
    assert conn.events[-2:] == [
        f"start {domain_name(client.id)}",
        f"start {domain_name(server.id)}",
    ]


def test_an_unexpected_crash_still_starts_the_domain_again() -> None:
    conn = FakeConn()
    vm = instance()
    conn.add(vm.id)

    def measure(*_: Any, **__: Any) -> Measurement:
        raise OSError("disk full")

    done = _runner(conn, measure=measure).run(measurement("cyclictest", vm))
    assert done.state == "error" and done.fault is not None and "disk full" in done.fault
    assert conn.domains[domain_name(vm.id)].running


def test_a_domain_that_does_not_start_again_is_the_fault() -> None:
    conn = FakeConn()
    vm = instance()
    conn.add(vm.id)
    conn.fail_start.add(domain_name(vm.id))

    def measure(_c: Any, _fs: Any, name: str, *_: Any, **__: Any) -> Measurement:
        return cyclictest_measurement(name)

    done = _runner(conn, measure=measure).run(measurement("cyclictest", vm))
    assert done.state == "error"
    assert done.fault is not None
    assert f"domain {domain_name(vm.id)} could not be started again" in done.fault
    assert done.result is not None  # the figures are kept


def test_a_missing_domain_is_refused_and_nothing_is_stopped() -> None:
    conn = FakeConn()
    client, server = instance("client"), instance("server")
    conn.add(client.id)
    called: list[str] = []

    def rtt(*_: Any, **__: Any) -> RttReport:
        called.append("rtt")
        raise AssertionError("must not run")

    done = _runner(conn, rtt=rtt).run(measurement("rtt", client, server))
    assert done.state == "error"
    assert done.fault == (
        f"the domain of instance server ({domain_name(server.id)}) is not defined on this "
        "host: nothing was measured"
    )
    assert called == [] and conn.events == []


def test_bad_parameters_are_refused_before_touching_a_domain() -> None:
    conn = FakeConn()
    client, server = instance("client"), instance("server")
    conn.add(client.id)
    conn.add(server.id)
    done = _runner(conn).run(measurement("rtt", client, server, server_address="10.9.0.2"))
    assert done.state == "error"
    assert done.fault is not None and "has no prefix length" in done.fault
    done = _runner(conn).run(measurement("cyclictest", client, loops=5))
    assert done.fault is not None and "invalid cyclictest parameters: loops" in done.fault
    done = _runner(conn).run(measurement("rtt", client))
    assert done.fault is not None and "needs a peer instance" in done.fault
    assert conn.events == []


def test_recover_restores_the_command_line_and_starts_the_domain() -> None:
    conn = FakeConn()
    vm, gone = instance("vm"), instance("gone")
    dom = conn.add(vm.id, running=False)
    dom.xml = xml_of(
        dom.domain_name,
        'console=ttyS0 quiet rtkvm.ip=10.9.0.1/24 rtkvm.wait=10.9.0.2 rtkvm.sockperf="ping-pong '
        '-i 10.9.0.2" rtkvm.cyclictest="-m -q -p 90"',
    )
    assert _runner(conn).recover([vm, gone]) == []
    assert dom.running
    assert "<cmdline>console=ttyS0 quiet</cmdline>" in dom.xml
    assert conn.events == [f"define {dom.domain_name}", f"start {dom.domain_name}"]


def test_strip_run_words_keeps_the_rest() -> None:
    assert strip_run_words("console=ttyS0 isolcpus=1 rtkvm.sockperf_server=1.2.3.4") == (
        "console=ttyS0 isolcpus=1"
    )


def _on_image(name: str) -> Any:
    ref = {
        "id": str(uuid.uuid4()), "name": "debian-rt", "disk_format": "qcow2",
        "size_bytes": 1 << 20, "virtual_size_bytes": 1 << 30, "sha256": "0" * 64,
    }  # fmt: skip
    return instance(name, image_ref=ImageRef.model_validate(ref))


def test_a_tenants_server_is_measured_running_never_stopped() -> None:
    conn = FakeConn()
    vm = _on_image("tenant")
    conn.add(vm.id)
    calls: list[tuple[str, CyclictestParams]] = []

    def measure_running(_c: Any, _fs: HostFS, name: str, params: CyclictestParams, **_: Any) -> Any:
        calls.append((name, params))
        return {"accel": "tcg", "latency": {"overflowed": False}, "notes": ["said by the run"]}

    done = _runner(conn, measure_running=measure_running).run(
        measurement("cyclictest", vm, loops=500)
    )
    assert done.state == "done", done.fault
    assert calls == [(domain_name(vm.id), CyclictestParams(500, 1000, 2000, 90))]
    assert conn.events == []  # neither stopped nor started
    assert done.result is not None
    assert done.result["warnings"][0] == "said by the run" and "TCG" in done.result["warnings"][1]


def test_a_round_trip_between_tenants_servers_runs_through_their_guest_agents() -> None:
    conn = FakeConn()
    a, b = _on_image("tenant-a"), _on_image("tenant-b")
    for vm in (a, b):
        conn.add(vm.id)
    calls: list[dict[str, Any]] = []

    def rtt_running(_c: Any, client: str, server: str, **kw: Any) -> dict[str, Any]:
        calls.append({"client": client, "server": server, **kw})
        return {"method": "guest-agent", "samples": 1000}

    m = measurement(
        "rtt", a, b, seconds=3, client_address="192.0.2.11/24", server_address="192.0.2.12/24"
    )
    done = _runner(conn, rtt_running=rtt_running).run(m)
    assert done.state == "done", done.fault
    assert done.result == {"method": "guest-agent", "samples": 1000}
    assert calls == [
        {
            "client": domain_name(a.id), "server": domain_name(b.id),
            "client_address": "192.0.2.11/24", "server_address": "192.0.2.12/24",
            "labels": ("tenant-a", "tenant-b"), "seconds": 3, "mps": DEFAULT_MPS,
            "bucket_us": DEFAULT_BUCKET_US,
        }
    ]  # fmt: skip
    assert conn.events == []

    def fails(*_: Any, **__: Any) -> dict[str, Any]:
        raise GuestError("tenant-b does not have 192.0.2.12/24 on any interface")

    failed = _runner(conn, rtt_running=fails).run(m)
    assert failed.state == "error"
    assert failed.fault == (
        "rtt tenant-a -> tenant-b failed: tenant-b does not have 192.0.2.12/24 on any interface"
    )
    mixed = _runner(conn, rtt_running=rtt_running).run(measurement("rtt", a, instance("probe")))
    assert mixed.state == "error" and "two servers on their tenants' images" in (mixed.fault or "")
    assert len(calls) == 1 and conn.events == []
