"""Fakes for measurements: libvirt domains held in memory, measurement functions and
instances, and a runner the loop can drive step by step."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import libvirt

from rtkvm.agent.measure import Finished, instances_of
from rtkvm.agent.names import domain_name
from rtkvm.errors import GuestError
from rtkvm.findings import Report
from rtkvm.guest.run import Measurement
from rtkvm.measure import cyclictest
from rtkvm.net.rtt import RttReport, SockperfSummary, build_report
from rtkvm.wire.guest import AgentInstance
from rtkvm.wire.measure import AgentMeasurement

CYCLICTEST_CAPTURE = Path(__file__).parents[1] / "measure" / "data" / "host_2threads.txt"


def xml_of(name: str, cmdline: str = "console=ttyS0 quiet panic=-1") -> str:
    return (
        f"<domain type='qemu'><name>{name}</name><os><kernel>/k</kernel>"
        f"<cmdline>{cmdline}</cmdline></os></domain>"
    )


class FakeDomain:
    def __init__(self, conn: FakeConn, name: str, running: bool = True) -> None:
        self.conn = conn
        self.domain_name = name
        self.running = running
        self.xml = xml_of(name)

    def name(self) -> str:
        return self.domain_name

    def isActive(self) -> bool:  # noqa: N802 (libvirt's name)
        return self.running

    def create(self) -> None:
        if self.domain_name in self.conn.fail_start:
            raise libvirt.libvirtError(f"cannot start {self.domain_name}: no memory")
        self.running = True
        self.conn.events.append(f"start {self.domain_name}")

    def destroy(self) -> None:
        self.running = False
        self.conn.events.append(f"stop {self.domain_name}")

    def XMLDesc(self, _flags: int = 0) -> str:  # noqa: N802 (libvirt's name)
        return self.xml


class FakeConn:
    """A libvirt connection: domains by name, what happened to them in ``events``."""

    def __init__(self) -> None:
        self.domains: dict[str, FakeDomain] = {}
        self.events: list[str] = []
        self.fail_start: set[str] = set()

    def add(self, instance_id: str, *, running: bool = True) -> FakeDomain:
        name = domain_name(instance_id)
        self.domains[name] = FakeDomain(self, name, running)
        return self.domains[name]

    def lookupByName(self, name: str) -> FakeDomain:  # noqa: N802 (libvirt's name)
        try:
            return self.domains[name]
        except KeyError:
            raise libvirt.libvirtError(f"Domain not found: {name}") from None

    def getURI(self) -> str:  # noqa: N802 (libvirt's name)
        return "fake:///"

    def defineXML(self, xml: str) -> FakeDomain:  # noqa: N802 (libvirt's name)
        from lxml import etree

        name = etree.fromstring(xml.encode()).findtext("name") or ""
        self.domains[name].xml = xml
        self.events.append(f"define {name}")
        return self.domains[name]

    @contextlib.contextmanager
    def connect(self) -> Iterator[FakeConn]:
        yield self


class WaivedInstance(AgentInstance):
    """An instance with the host's RT waiver (whether or not AgentInstance has it yet)."""

    rt_waiver: str | None = None


def instance(name: str = "vm", **extra: Any) -> AgentInstance:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()), "name": name, "project": "p1", "flavor": "rt2",
        "state": "active", "fault": None, "host": "node1", "rt_cores": 2,
        "vcpu_pins": [[0, 2], [1, 3]], "emulator_cpus": "0-1", "cell_nodes": [0],
        "networks": [], "created_at": 0.0, "updated_at": 0.0, "spec": {},
    }  # fmt: skip
    body["placement"] = placement_doc(body)
    return WaivedInstance.model_validate(body | extra)


def measurement(
    kind: str, server: AgentInstance, peer: AgentInstance | None = None, **params: Any
) -> AgentMeasurement:
    return AgentMeasurement(
        id=str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        state="queued",
        params=params,
        server=server,
        peer=peer,
        network="blue" if peer is not None else None,
    )


def cyclictest_measurement(name: str, accel: str = "kvm") -> Measurement:
    raw = CYCLICTEST_CAPTURE.read_text()
    return Measurement(
        name=name,
        accel=accel,
        boot_seconds=1.5,
        run_seconds=2.0,
        ready_line="RTKVM-READY realtime=1",
        guest_realtime=True,
        verify=Report(f"guest {name}", ()),
        cyclictest_args="-m -q",
        result=cyclictest.parse(raw),
        raw=raw,
    )


def rtt_report(path: str, warnings: Sequence[str] = ()) -> RttReport:
    summary = SockperfSummary("rtt", 3, 10.0, 11.0, 12.0, {50.0: 11.0}, 0, 0, 0)
    return build_report(path, summary, [10.0, 11.0, 12.0], bucket_us=1.0, warnings=warnings)


class FakeRunner:
    """A runner the test releases: ``run`` blocks until ``release`` is set."""

    def __init__(self, outcome: Finished | None = None) -> None:
        self.outcome = outcome or Finished("done", {"latency": {"max_us": 42}})
        self.started = threading.Event()
        self.release = threading.Event()
        self.ran: list[str] = []
        self.recovered: list[list[str]] = []

    def run(self, m: AgentMeasurement) -> Finished:
        self.ran.append(m.id)
        self.started.set()
        if not self.release.wait(10):
            raise GuestError("the test never released the measurement")
        return self.outcome

    def recover(self, instances: Sequence[AgentInstance]) -> list[str]:
        self.recovered.append([i.id for i in instances])
        return []


def busy_ids(m: AgentMeasurement) -> set[str]:
    return {i.id for i in instances_of(m)}


def placement_doc(body: dict[str, Any]) -> dict[str, Any]:
    """The wire placement an API would send with these instance fields (nothing floats)."""
    return {
        "vcpu_pins": body["vcpu_pins"],
        "emulator_cpus": body["emulator_cpus"],
        "cell_nodes": body["cell_nodes"],
        "floating_vcpus": "",
        "floating_cpus": "",
    }
