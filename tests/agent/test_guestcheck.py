"""The agent checks its guests: after every create, then every recheck interval, and the
host's inspection again every reinspect interval, and at once after a tuning change.

The domains are real (libvirt's test driver, with the XML rtkvm designed); their QEMU
threads are a fake /proc written as libvirt would have set them from that XML. A
thread someone changed afterwards turns the guest degraded in the API, with the reason;
a host whose doctor stops saying ready makes its running guests degraded too, and takes
no new ones.
"""

from __future__ import annotations

from pathlib import Path

import libvirt
from prometheus_client.parser import text_string_to_metric_families

from rtkvm.agent.guestcheck import LiveChecker, libvirt_lookup
from rtkvm.agent.names import domain_name
from rtkvm.api.testing import Cloud, expect
from rtkvm.domain.audit import AuditHost
from rtkvm.domain.xml import parse_domain
from rtkvm.guest.hypervisor import LibvirtHypervisor
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.testing.qemuproc import Thread, stat_line, write_threads
from rtkvm.tune.journal import Journal
from rtkvm.wire.node import DoctorVerdict

from .conftest import TEST_URI, MakeAgent, small_flavor

QUIRKS = {"no_cap_sys_resource", "kvm_unusable"}
QEMU_PID = 700


def _as_libvirt_set_them(root: Path, name: str, xml: str) -> None:
    """The QEMU threads of the domain, pinned and scheduled as its XML says."""
    domain = parse_domain(xml)
    tune = domain.cputune
    assert tune is not None and tune.emulatorpin is not None
    rt = {v: (s.scheduler, s.priority) for s in tune.vcpuscheds for v in s.vcpus}
    emulator = tune.emulatorpin.format()
    threads: list[Thread] = [(QEMU_PID, "qemu-system-x86", "other", 0, emulator)]
    for pin in tune.vcpupins:
        policy, prio = rt.get(pin.vcpu, ("other", 0))
        threads.append((QEMU_PID + 1 + pin.vcpu, f"CPU {pin.vcpu}/TCG", policy, prio,
                        pin.cpuset.format()))  # fmt: skip
    write_threads(root, QEMU_PID, threads)
    run = root / "var/run/libvirt/qemu"
    run.mkdir(parents=True, exist_ok=True)
    (run / f"{name}.pid").write_text(f"{QEMU_PID}\n")


def test_a_guest_is_checked_after_create_and_again_when_it_drifts(
    cloud: Cloud,
    make_agent: MakeAgent,
    libvirt_test: LibvirtHypervisor,
    plan: PartitionPlan,
    fs: HostFS,
    tmp_path: Path,
) -> None:
    agent = make_agent("node1", libvirt_test)
    now = [0.0]
    agent.clock = lambda: now[0]
    proc = tmp_path / "host"
    proc.mkdir()
    agent.checker = LiveChecker(
        libvirt_lookup(TEST_URI), HostFS(proc), AuditHost.from_plan(plan, read_topology(fs)),
        QUIRKS,
    )  # fmt: skip
    agent.register()
    agent.reconcile()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt3", 3, 1024, hw__mem_page_size="1GB")  # node 1 has 1 GiB pages
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt3"}), 201)
    name = domain_name(vm["id"])

    # the check right after create runs before /proc holds the process: degraded, said why
    agent.step()
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert shown["state"] == "active" and shown["rt_state"] == "degraded"
    assert "QEMU process id cannot be read" in shown["rt_reasons"][0]

    conn = libvirt.open(TEST_URI)
    try:
        xml = conn.lookupByUUIDString(vm["id"]).XMLDesc(0)
    finally:
        conn.close()
    _as_libvirt_set_them(proc, name, xml)
    now[0] += 30  # not yet time to check again
    assert agent.step().rechecked == []
    now[0] += 31
    assert agent.step().rechecked == [vm["id"]]
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert (shown["rt_state"], shown["rt_reasons"]) == ("verified", []), shown["rt_reasons"]
    assert set(shown["rt_waived"]) <= {"accel.kvm", "memory.locked", "cpu.passthrough"}
    now[0] += 61
    assert agent.step().rechecked == []  # nothing changed: nothing reported

    # someone takes vCPU 1's RT scheduling away
    task = proc / f"proc/{QEMU_PID}/task/{QEMU_PID + 2}"
    (task / "stat").write_text(stat_line(QEMU_PID + 2, "CPU 1/TCG", 0, "other"))
    now[0] += 61
    assert agent.step().rechecked == [vm["id"]]
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert shown["rt_state"] == "degraded"
    assert any("vcpu1" in r for r in shown["rt_reasons"]), shown["rt_reasons"]


def test_a_host_that_stops_being_ready_degrades_its_guests_and_takes_no_more(
    cloud: Cloud, make_agent: MakeAgent, libvirt_test: LibvirtHypervisor
) -> None:
    agent = make_agent("node1", libvirt_test)
    now = [0.0]
    agent.clock = lambda: now[0]
    agent.register()
    agent.reconcile()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud, "rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    agent.step()
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["rt_state"] == "unverified"

    healthy = agent.inventory
    drifted = healthy().model_copy(
        update={"doctor": DoctorVerdict(verdict="not-ready", failed=["rt_throttling"])}
    )
    agent.inventory = lambda: drifted
    now[0] += 10
    agent.step()
    assert cloud.api.host("node1").doctor_verdict == "ready"  # not inspected again yet
    now[0] += 25
    agent.step()
    host = cloud.api.host("node1")
    assert (host.doctor_verdict, host.doctor_failed) == ("not-ready", ["rt_throttling"])
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert shown["rt_state"] == "degraded"
    assert "no longer RT-ready (rt_throttling)" in shown["rt_reasons"][-1]
    refused = alice.post("/v1/instances", json={"name": "vm2", "flavor": "rt2"})
    assert refused.status_code == 409 and "not RT-ready" in refused.json()["detail"]

    cloud.api.set_rt_waiver("node1", "lab bench")  # an admin waives it: not assured
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert shown["rt_state"] == "not-assured"

    agent.inventory = healthy  # fixed on the host: ready again at the next inspection
    now[0] += 31
    agent.step()
    assert cloud.api.host("node1").doctor_verdict == "ready"
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["rt_state"] == "unverified"


def test_a_tuning_change_is_inspected_at_the_next_step_not_the_next_interval(
    cloud: Cloud, make_agent: MakeAgent, libvirt_test: LibvirtHypervisor, tmp_path: Path
) -> None:
    """`rtkvm host tune --apply` or `rollback` restamps the journal: the agent sees it
    at its next step (2 s under `rtkvm up`), not 30 s later."""
    journal = Journal(HostFS(tmp_path, writable=True))
    agent = make_agent("node1", libvirt_test)
    now = [0.0]
    agent.clock = lambda: now[0]
    agent.tuning = journal.fingerprint
    agent.register()
    healthy = agent.inventory
    agent.inventory = lambda: healthy().model_copy(
        update={"doctor": DoctorVerdict(verdict="not-ready", failed=["rt_throttling"])}
    )
    now[0] += 2
    agent.step()
    assert cloud.api.host("node1").doctor_verdict == "ready"  # nothing said to look again

    journal.stamp_change("apply", {"profile": "rt-kvm"})  # a tuning finished
    now[0] += 2
    agent.step()
    assert cloud.api.host("node1").doctor_failed == ["rt_throttling"]

    agent.inventory = healthy
    now[0] += 2
    agent.step()
    assert cloud.api.host("node1").doctor_verdict == "not-ready"  # seen, not moved since
    journal.clear()  # a full rollback removes the header
    now[0] += 2
    agent.step()
    assert cloud.api.host("node1").doctor_verdict == "ready"


def test_an_rt_check_comes_only_with_active(cloud: Cloud) -> None:
    node = cloud.host("node1", nodes=1, cores_per_node=4)
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    path = f"/v1/agent/instances/{vm['id']}/state"
    check = {"state": "degraded", "reasons": ["x"]}
    refused = expect(node.post(path, json={"state": "error", "fault": "f", "rt": check}), 422)
    assert "with state 'active' only" in refused["detail"]
    expect(node.post(path, json={"state": "active", "rt": check}), 200)
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["rt_reasons"] == ["x"]
    expect(node.post(path, json={"state": "error", "fault": "gone"}), 200)
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert (shown["rt_state"], shown["rt_reasons"]) == ("unverified", [])


def test_the_agents_counters_reach_the_apis_metrics(
    cloud: Cloud, make_agent: MakeAgent, libvirt_test: LibvirtHypervisor
) -> None:
    agent = make_agent("node1", libvirt_test)
    agent.register()
    agent.reconcile()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud, "rt2", 2)
    expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    agent.step()  # builds it
    agent.step()  # its heartbeat carries the count
    got = cloud.admin.get("/metrics")
    assert got.status_code == 200, got.text
    text = got.text
    samples = {
        (s.name, s.labels.get("host")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("rtkvm_agent_creates_total", "node1")] == 1
    assert samples[("rtkvm_agent_steps_total", "node1")] >= 1
    assert samples[("rtkvm_agent_create_failures_total", "node1")] == 0
    assert ("rtkvm_agent_last_step_seconds", "node1") in samples
