"""The agent through the real API: register, heartbeat, create, delete, liveness."""

from __future__ import annotations

from pathlib import Path

import httpx
import libvirt
from lxml import etree

from rtkvm.agent.names import domain_name, guest_id
from rtkvm.api.testing import Cloud, FakeClock, expect
from rtkvm.errors import GuestError
from rtkvm.guest.hypervisor import DomainState, LibvirtHypervisor
from rtkvm.wire.agent_client import AgentClient

from .conftest import TEST_URI, MakeAgent, small_flavor
from .fakes import FakeHypervisor, FakeSwitch


def _pins(xml: str) -> list[list[int]]:
    root = etree.fromstring(xml.encode())
    return [[int(p.get("vcpu", "")), int(p.get("cpuset", ""))] for p in root.iter("vcpupin")]


def test_register_create_on_libvirt_and_delete_frees_the_claim(
    cloud: Cloud, make_agent: MakeAgent, libvirt_test: LibvirtHypervisor
) -> None:
    agent = make_agent("node1", libvirt_test)
    host = agent.register()
    assert host.status == "up"
    assert [n.rt_pcpus for n in host.nodes] == ["2-3", "4-7"]
    assert host.physnets == ["blue"]  # red's uplink ens9 does not exist on the host
    assert host.doctor_verdict == "ready"
    assert host.dataplane_state == "none"  # this agent runs without a switch
    assert agent.reconcile().summary() == (  # the driver's own domain is not rtkvm's
        "0 adopted, 0 vanished, 0 unknown domains, 0 unknown switch ports"
    )

    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud, "rt3", 3)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt3"}), 201)
    assert (vm["host"], vm["state"]) == ("node1", "building")

    done = agent.step()
    assert done.created[vm["id"]].state == "active", done.created[vm["id"]].fault
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert shown["state"] == "active"
    with_domain = {d.uuid: d for d in libvirt_test.domains()}
    assert with_domain[vm["id"]].name == domain_name(vm["id"])
    assert with_domain[vm["id"]].running
    conn = libvirt.open(TEST_URI)
    try:
        xml = conn.lookupByUUIDString(vm["id"]).XMLDesc(0)
    finally:
        conn.close()
    assert _pins(xml) == [p for p in shown["vcpu_pins"]]  # pinned where the API claimed
    assert expect(cloud.admin.get("/v1/projects/p1"), 200)["rt_cores_used"] == 3

    assert agent.step().created == {}  # nothing left to do
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    done = agent.step()
    assert done.deleted[vm["id"]].state == "deleted"
    assert vm["id"] not in {d.uuid for d in libvirt_test.domains()}
    assert expect(cloud.admin.get("/v1/projects/p1"), 200)["rt_cores_used"] == 0
    nodes = expect(cloud.admin.get("/v1/hosts/node1"), 200)["nodes"]
    assert [n["rt_used"] for n in nodes] == [0, 0]
    assert alice.get(f"/v1/instances/{vm['id']}").status_code == 404


def test_networked_instance_is_plugged_and_unplugged(
    cloud: Cloud, make_agent: MakeAgent, switch: FakeSwitch
) -> None:
    hv = FakeHypervisor()
    agent = make_agent("node1", hv, switch)
    host = agent.register()
    assert host.dataplane_state == "ready"
    # what the switch described travels in the host report and stays with the host
    assert host.dataplane is not None
    assert (host.dataplane.backend, host.dataplane.networks) == ("fake", ["blue"])
    shown = expect(cloud.admin.get("/v1/hosts/node1"), 200)["dataplane"]
    assert (shown["vif_type"], shown["pmd_cpus"], shown["pmd_sched"]) == (
        "vhostuser",
        "3",
        "fifo/95",
    )
    cloud.network("blue", "blue", shared=True)
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    body = {"name": "vm", "flavor": "rt2", "networks": ["blue"]}
    vm = expect(alice.post("/v1/instances", json=body), 201)
    assert agent.step().created[vm["id"]].state == "active"
    gid = guest_id(vm["id"])
    assert switch.plugged == {(gid, 0): "blue"}
    _, running, xml = hv.defined[domain_name(vm["id"])]
    assert running
    assert f"/run/rtkvm/vhost/{gid}.0.sock" in xml
    assert 'memAccess="shared"' in xml or "memAccess='shared'" in xml
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    assert agent.step().deleted[vm["id"]].state == "deleted"
    assert switch.plugged == {}
    assert switch.unplugged == [(gid, 0)]
    assert hv.defined == {}


def test_a_network_created_after_the_switch_started_is_carried_at_plug(
    cloud: Cloud, make_agent: MakeAgent, switch: FakeSwitch
) -> None:
    agent = make_agent("node1", FakeHypervisor(), switch)
    agent.register()
    cloud.network("blue100", "blue", vlan=100, shared=True)  # the switch was not told
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    body = {"name": "vm", "flavor": "rt2", "networks": ["blue100"]}
    vm = expect(alice.post("/v1/instances", json=body), 201)
    assert agent.step().created[vm["id"]].state == "active"
    assert switch.carried() == ("blue100",)
    assert switch.plugged == {(guest_id(vm["id"]), 0): "blue100"}


def test_the_switch_follows_the_clouds_networks(
    cloud: Cloud, make_agent: MakeAgent, switch: FakeSwitch
) -> None:
    agent = make_agent("node1", FakeHypervisor(), switch)
    now = [0.0]
    agent.clock = lambda: now[0]
    cloud.network("blue7", "blue", vlan=7, shared=True)
    agent.register()
    agent.reconcile()  # pushed at start: blue is wired here (red's uplink is absent)
    assert switch.carried() == ("blue7",)
    cloud.network("blue8", "blue", vlan=8, shared=True)
    cloud.network("red9", "red", vlan=9, shared=True)  # not wired here: never pushed
    now[0] += 31
    agent.step()
    assert switch.carried() == ("blue7", "blue8")
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2",
                                                  "networks": ["blue8"]}), 201)  # fmt: skip
    agent.step()
    expect(cloud.admin.delete("/v1/networks/blue7"), 204)
    now[0] += 31
    agent.step()
    assert switch.carried() == ("blue8",)  # blue7 dropped
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    agent.step()
    expect(cloud.admin.delete("/v1/networks/blue8"), 204)
    now[0] += 31
    agent.step()
    assert switch.carried() == ()


def test_failed_create_is_reported_with_the_reason_and_undone(
    cloud: Cloud, make_agent: MakeAgent, switch: FakeSwitch
) -> None:
    hv = FakeHypervisor()
    hv.fail_create = "qemu: could not allocate memory"
    agent = make_agent("node1", hv, switch)
    agent.register()
    cloud.network("blue", "blue", shared=True)
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    vm = expect(
        alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2", "networks": ["blue"]}),
        201,
    )
    agent.step()
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert shown["state"] == "error"
    assert "qemu: could not allocate memory" in shown["fault"]
    assert switch.plugged == {}  # the port plugged before the failure was taken back
    assert hv.defined == {}


def test_failed_teardown_stays_deleting_and_is_retried(cloud: Cloud, make_agent: MakeAgent) -> None:
    hv = FakeHypervisor()
    agent = make_agent("node1", hv)
    agent.register()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    agent.step()
    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    hv.fail_remove = "domain is locked"
    assert agent.step().deleted[vm["id"]].state == "error"
    [work] = agent.work()
    assert work.state == "deleting"
    assert work.fault is not None and "domain is locked" in work.fault
    assert expect(cloud.admin.get("/v1/projects/p1"), 200)["rt_cores_used"] == 2  # still held
    hv.fail_remove = None
    assert agent.step().deleted[vm["id"]].state == "deleted"
    assert expect(cloud.admin.get("/v1/projects/p1"), 200)["rt_cores_used"] == 0


def test_a_silent_agent_marks_its_host_down_and_out_of_scheduling(
    cloud: Cloud, make_agent: MakeAgent, clock: FakeClock
) -> None:
    agent = make_agent("node1", FakeHypervisor())
    agent.register()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    clock.advance(61)
    assert expect(cloud.admin.get("/v1/hosts/node1"), 200)["status"] == "down"
    refused = alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"})
    assert refused.status_code == 409
    assert "1 host down" in refused.json()["detail"]
    agent.step()  # a heartbeat
    assert expect(cloud.admin.get("/v1/hosts/node1"), 200)["status"] == "up"
    expect(alice.post("/v1/instances", json={"name": "vm2", "flavor": "rt2"}), 201)


def test_mixed_and_isolated_emulator_flavors_are_built_as_placed(
    cloud: Cloud, make_agent: MakeAgent, tmp_path: Path
) -> None:
    hv = FakeHypervisor()
    agent = make_agent("node1", hv)
    agent.register()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud, "mixed", 2, hw__cpu_policy="mixed")
    small_flavor(cloud, "iso", 2, hw__emulator_threads_policy="isolate")
    mixed = expect(alice.post("/v1/instances", json={"name": "a", "flavor": "mixed"}), 201)
    iso = expect(alice.post("/v1/instances", json={"name": "b", "flavor": "iso"}), 201)
    done = agent.step()
    assert {i: o.state for i, o in done.created.items()} == {
        mixed["id"]: "active",
        iso["id"]: "active",
    }
    mixed_xml = hv.defined[domain_name(mixed["id"])][2]
    root = etree.fromstring(mixed_xml.encode())
    pins = {p.get("vcpu"): p.get("cpuset") for p in root.iter("vcpupin")}
    [(rt_vcpu, rt_pcpu)] = expect(alice.get(f"/v1/instances/{mixed['id']}"), 200)["vcpu_pins"]
    assert pins[str(rt_vcpu)] == str(rt_pcpu)
    assert pins["0"] in ("0-1", "0,1")  # vCPU 0 floats on node 0's housekeeping CPUs
    iso_shown = expect(alice.get(f"/v1/instances/{iso['id']}"), 200)
    iso_root = etree.fromstring(hv.defined[domain_name(iso["id"])][2].encode())
    emulator = iso_root.find("./cputune/emulatorpin")
    assert emulator is not None and emulator.get("cpuset") == iso_shown["emulator_cpus"]
    assert iso_shown["rt_cores"] == 3


def test_heartbeats_carry_the_switch_state(
    cloud: Cloud, make_agent: MakeAgent, switch: FakeSwitch
) -> None:
    agent = make_agent("node1", FakeHypervisor(), switch)
    agent.register()
    cloud.network("blue", "blue", shared=True)
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    switch.up = False
    agent.step()
    assert expect(cloud.admin.get("/v1/hosts/node1"), 200)["dataplane_state"] == "down"
    body = {"name": "vm", "flavor": "rt2", "networks": ["blue"]}
    refused = alice.post("/v1/instances", json=body)
    assert refused.status_code == 409
    expect(alice.post("/v1/instances", json={"name": "plain", "flavor": "rt2"}), 201)
    switch.up = True
    agent.step()
    assert expect(cloud.admin.get("/v1/hosts/node1"), 200)["dataplane_state"] == "ready"
    expect(alice.post("/v1/instances", json=body), 201)


class _DownFirst(httpx.BaseTransport):
    """Refuses the first ``failures`` connections, then forwards to the in-process app."""

    def __init__(self, app: httpx.Client, failures: int) -> None:
        self.app = app
        self.failures = failures

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.failures > 0:
            self.failures -= 1
            raise httpx.ConnectError("connection refused", request=request)
        return self.app.request(
            request.method, request.url.path, content=request.content, headers=request.headers
        )


def test_an_api_not_up_yet_is_waited_for(cloud: Cloud, make_agent: MakeAgent) -> None:
    agent = make_agent("node1", FakeHypervisor())
    agent.control = AgentClient(
        http=httpx.Client(transport=_DownFirst(agent.control.http, 2), base_url="http://api")
    )
    naps: list[float] = []
    agent.run(interval=3.0, sleep=naps.append, stop=lambda: len(naps) >= 3)
    assert naps == [3.0, 3.0, 3.0]  # two refused registrations, then steps
    assert expect(cloud.admin.get("/v1/hosts/node1"), 200)["status"] == "up"


def test_a_guest_that_stops_or_vanishes_while_the_agent_runs_is_reported(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    hv = FakeHypervisor()
    agent = make_agent("node1", hv)
    agent.register()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    a = expect(alice.post("/v1/instances", json={"name": "a", "flavor": "rt2"}), 201)
    b = expect(alice.post("/v1/instances", json={"name": "b", "flavor": "rt2"}), 201)
    agent.step()
    uuid_a, _, xml_a = hv.defined[domain_name(a["id"])]
    hv.defined[domain_name(a["id"])] = (uuid_a, False, xml_a)  # QEMU exited
    del hv.defined[domain_name(b["id"])]  # undefined behind the agent's back
    done = agent.step()
    assert {i: o.state for i, o in done.drifted.items()} == {a["id"]: "stopped", b["id"]: "error"}
    shown_a = expect(alice.get(f"/v1/instances/{a['id']}"), 200)
    shown_b = expect(alice.get(f"/v1/instances/{b['id']}"), 200)
    assert (shown_a["state"], shown_b["state"]) == ("stopped", "error")
    assert "without a stop through rtkvm" in shown_a["fault"] and "vanished" in shown_b["fault"]
    assert shown_a["rt_state"] == "unverified"
    assert hv.defined[domain_name(a["id"])][1] is False  # not restarted behind the user's back
    assert agent.step().drifted == {}  # reported once
    hv.defined[domain_name(a["id"])] = (uuid_a, True, xml_a)  # `virsh start` outside rtkvm
    assert {i: o.state for i, o in agent.step().drifted.items()} == {a["id"]: "active"}
    shown_a = expect(alice.get(f"/v1/instances/{a['id']}"), 200)
    assert (shown_a["state"], shown_a["fault"]) == ("active", None)


class _FlakyHypervisor(FakeHypervisor):
    """libvirtd not answering for the first ``failures`` listings."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def domains(self) -> list[DomainState]:
        if self.failures > 0:
            self.failures -= 1
            raise GuestError("cannot connect to qemu:///system: is libvirtd up?")
        return super().domains()


def test_a_hypervisor_that_does_not_answer_is_retried(cloud: Cloud, make_agent: MakeAgent) -> None:
    hv = _FlakyHypervisor(failures=2)  # the first two reconciliations at start fail
    agent = make_agent("node1", hv)
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud)
    naps: list[float] = []

    def stop() -> bool:
        if len(naps) == 1:  # the host is registered by now: place an instance on it
            expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
        return len(naps) >= 3

    agent.run(interval=1.0, sleep=naps.append, stop=stop)
    assert naps == [1.0, 1.0, 1.0]  # start retried twice, then one nap between two steps
    [vm] = expect(alice.get("/v1/instances"), 200)
    assert vm["state"] == "active"
    assert domain_name(vm["id"]) in hv.defined
