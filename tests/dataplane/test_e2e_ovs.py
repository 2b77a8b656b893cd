"""End to end: OVS-DPDK under rtkvm's control on this machine, two unmanaged networks.

Starts the switch with hugepages, lays out networks blue and red (each with a
veth uplink whose far end is in a namespace the test creates), plugs
dpdkvhostuserclient ports for guests g1, g2 (blue) and g3 (red), checks in
/proc that the PMD thread runs on the dataplane CPU at the chosen real-time
priority and everything else on housekeeping, sends traffic between two blue
peers through the switch (sockperf round trip), between two red peers on VLAN
200 access ports, and checks red cannot reach blue nor blue red. Everything is
torn down in ``finally`` and checked to be gone (processes, hugepages).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.backend import OvsDpdkBackend
from rtkvm.dataplane.layout import GuestNic, compute_layout, resolve_cpus
from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.settings import load_settings
from rtkvm.dataplane.threads import read_threads
from rtkvm.errors import PlanError
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.net.model import HostWiring, UnmanagedNetwork, Uplink
from rtkvm.net.netns import NetnsPeer
from rtkvm.net.rttrun import NetnsEndpoint, measure

pytestmark = pytest.mark.e2e

NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"
RED_VLAN = 200


def _require_host() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: starts OVS-DPDK, reserves hugepages, creates namespaces")
    missing = [
        b
        for b in ("ovsdb-server", "ovs-vsctl", "sockperf", "ip", "ping", "ethtool")
        if not shutil.which(b)
    ]
    assert not missing, f"missing {missing}: run `make setup` (scripts/apt-packages.txt)"


@pytest.fixture
def peers() -> Iterator[dict[str, NetnsPeer]]:
    """Blue uplink peer, a second blue peer (test-only port), red uplink peer."""
    _require_host()
    tag = f"{os.getpid() % 10000}"
    made: dict[str, NetnsPeer] = {}
    try:
        made["blue"] = NetnsPeer.create(f"rtkvm-e2e-b{tag}", f"rtkb{tag}", "169.254.77.1/24")
        made["blue2"] = NetnsPeer.create(f"rtkvm-e2e-c{tag}", f"rtkc{tag}", "169.254.77.2/24")
        # The red uplink's peer answers on VLAN 200 only. Where the kernel has no 802.1Q
        # (CONFIG_VLAN_8021Q unset, as here) that is rtkvm's user-space tagged peer.
        made["red"] = NetnsPeer.create(
            f"rtkvm-e2e-r{tag}", f"rtkr{tag}", "169.254.77.3/24", vlan=RED_VLAN
        )
        made["red2"] = NetnsPeer.create(f"rtkvm-e2e-s{tag}", f"rtks{tag}", "169.254.77.4/24")
        made["red3"] = NetnsPeer.create(f"rtkvm-e2e-t{tag}", f"rtkt{tag}", "169.254.77.5/24")
        yield made
    finally:
        errors = [e for peer in made.values() for e in peer.delete()]
        assert not errors, errors


def test_ovs_dpdk_blue_red(peers: dict[str, NetnsPeer]) -> None:
    fs = HostFS("/", writable=True)
    settings = load_settings()
    topo = read_topology(fs)
    node_of = {cpu: topo.node_of_cpu(cpu) for cpu in topo.online}
    hugepages_before = fs.read(NR_HUGEPAGES).strip()

    # This machine: 2 CPUs, housekeeping 0 and RT vCPUs 1 leave nothing for the data plane.
    plan = PartitionPlan(housekeeping=CpuSet([0]), rt_vcpu=CpuSet([1]), dataplane=CpuSet())
    with pytest.raises(PlanError, match="not enough CPUs"):
        resolve_cpus(plan, online=topo.online, node_of_cpu=node_of)
    with pytest.raises(PlanError, match="share-with-rt-vcpus"):
        resolve_cpus(plan, online=topo.online, node_of_cpu=node_of, dataplane_override=CpuSet([1]))
    cpus = resolve_cpus(
        plan,
        online=topo.online,
        node_of_cpu=node_of,
        dataplane_override=CpuSet([1]),
        allow_shared_with_rt=True,
    )
    assert cpus.shared_with_rt and "means nothing" in cpus.warnings[0]

    base = Path(tempfile.mkdtemp(prefix="rtkvm-e2e-", dir="/tmp"))
    networks = [UnmanagedNetwork("blue", "physblue"), UnmanagedNetwork("red", "physred", RED_VLAN)]
    wiring = HostWiring(
        (Uplink("physblue", peers["blue"].host_if), Uplink("physred", peers["red"].host_if))
    )
    nics = [GuestNic("g1", 0, "blue"), GuestNic("g2", 0, "blue"), GuestNic("g3", 0, "red")]
    layout = compute_layout(
        settings,
        cpus,
        node_of_cpu=node_of,
        nodes=[n.id for n in topo.nodes],
        networks=networks,
        wiring=wiring,
        socket_dir=str(base / "vhost"),
    )
    ovs = OvsDpdk(settings, base / "run", fs)
    backend = OvsDpdkBackend(ovs, layout)
    try:
        info = ovs.start(layout)
        print(f"\nOVS-DPDK start: {info.seconds:.2f} s to DPDK initialised, IOVA {info.iova_mode}")
        assert info.iova_mode == "VA"
        # At least what DPDK needs was added (more if another program took free pages).
        expected_pages = int(hugepages_before) + settings.hugepages_per_node
        assert int(fs.read(NR_HUGEPAGES)) >= expected_pages

        plugged = {nic.guest: backend.plug(nic) for nic in nics}
        for guest, p in plugged.items():
            assert str(p.socket.parent) == str(base / "vhost") and p.mode == "server", guest
        blue_ports = ovs.vsctl("list-ports", "rt-physblue").split()
        red_ports = ovs.vsctl("list-ports", "rt-physred").split()
        # each uplink is a DPDK port (af_packet on the veth's host end) that a PMD polls
        assert sorted(blue_ports) == ["up-physblue", "vhu-g1-0", "vhu-g2-0"]
        assert sorted(red_ports) == ["up-physred", "vhu-g3-0"]
        assert ovs.vsctl("get", "Interface", "up-physblue", "type").strip() == "dpdk"
        devargs = ovs.vsctl("get", "Interface", "up-physblue", "options:dpdk-devargs")
        assert f"iface={peers['blue'].host_if}" in devargs
        rxq = ovs.appctl("ovs-vswitchd", "dpif-netdev/pmd-rxq-show")
        assert "port: up-physblue" in rxq and "port: up-physred" in rxq, rxq
        kind = ovs.vsctl("get", "Interface", "vhu-g1-0", "type").strip()
        assert kind == "dpdkvhostuserclient"
        # No mempool failure: the ring mempool driver is present (dataplane.toml).
        assert "Failed to create memory pool" not in ovs.vswitchd_log.read_text()

        # PMD threads: read /proc ourselves, independent of the report's logic.
        pid = ovs.pid("ovs-vswitchd")
        assert pid is not None
        threads = read_threads(fs, pid)
        pmds = [t for t in threads if t.is_pmd]
        assert len(pmds) == 1
        assert pmds[0].cpus_allowed == CpuSet([1]) and pmds[0].last_cpu == 1
        assert (pmds[0].policy, pmds[0].rt_priority) == ("fifo", settings.pmd_priority)
        stray = [t for t in threads if not t.is_pmd and t.cpus_allowed != CpuSet([0])]
        assert not stray, stray
        report = backend.verify()
        assert report.ok, report.render_table()
        print(
            f"PMD {pmds[0].comm} tid {pmds[0].tid}: CPUs {pmds[0].cpus_allowed}, "
            f"{pmds[0].policy}/{pmds[0].rt_priority}; {len(threads) - 1} others on CPU 0"
        )

        # Traffic through the switch and the polled uplink: a second blue peer on a
        # test-only system port reaches the blue peer behind the af_packet uplink.
        ovs.vsctl("add-port", "rt-physblue", peers["blue2"].host_if)
        blue2, blue, red = peers["blue2"], peers["blue"], peers["red"]
        _wait_ping(blue2, blue.ip)
        rtt = measure(
            NetnsEndpoint(blue2.netns),
            NetnsEndpoint(blue.netns),
            blue.ip,
            seconds=3,
            mps=1000,
            warnings=cpus.warnings,
        )
        print(
            f"blue peer -> blue peer through OVS-DPDK: min {rtt.min_us:.1f} "
            f"p99 {rtt.percentiles[99.0]:.1f} max {rtt.max_us:.1f} µs, {rtt.samples} samples"
        )
        assert rtt.samples > 500
        assert rtt.min_us <= rtt.percentiles[50.0] <= rtt.percentiles[99.0] <= rtt.max_us
        assert sum(rtt.histogram.counts) == rtt.samples

        # Red is VLAN 200: its uplink is a trunk of exactly that VLAN. Two red peers on
        # test-only access ports (tag 200) reach each other through the switch.
        red2, red3 = peers["red2"], peers["red3"]
        for peer in (red2, red3):
            ovs.vsctl("add-port", "rt-physred", peer.host_if, f"tag={RED_VLAN}")
        assert ovs.vsctl("get", "Port", "up-physred", "trunks").strip() == f"[{RED_VLAN}]"
        _wait_ping(red2, red3.ip)
        # ... and the peer outside, through the trunk: tagged 200 out of the polled uplink
        # and back in (the peer answers tagged frames only)
        _wait_ping(red2, red.ip)
        print(f"red peer on an access port -> red's VLAN {RED_VLAN} peer outside: answered"
              f"{' (user-space tagged peer)' if red.responder else ''}")  # fmt: skip

        # Isolation (all peers share one IP subnet): red cannot reach blue nor blue red.
        for src, dst in ((red2, blue), (blue2, red3), (blue2, red)):
            lost = src.exec(["ping", "-c", "3", "-W", "1", "-i", "0.2", dst.ip])
            assert lost.returncode != 0 and " 0 received" in lost.stdout, (src, dst, lost.stdout)

        backend.unplug(GuestNic("g2", 0, "blue"))
        assert "vhu-g2-0" not in ovs.vsctl("list-ports", "rt-physblue").split()
    finally:
        errors = ovs.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert not errors, errors
    assert ovs.pid("ovs-vswitchd") is None and ovs.pid("ovsdb-server") is None
    assert fs.read(NR_HUGEPAGES).strip() == hugepages_before


def _wait_ping(peer: NetnsPeer, ip: str, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        done = peer.exec(["ping", "-c", "1", "-W", "1", ip])
        if done.returncode == 0:
            return
    pytest.fail(f"{peer.netns} cannot reach {ip} through the switch within {limit:g} s")
