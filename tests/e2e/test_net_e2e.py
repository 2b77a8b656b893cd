"""End to end: OVS-DPDK started by rtkvm, three RT guests on networks blue and red.

Starts the switch (hugepages, PMD on CPU 1 shared with the RT vCPUs: this
host has 2 CPUs, said loudly), networks blue and red (each an untagged
physical network whose uplink is a veth to a namespace peer), plugs g1, g2
on blue and g3 on red, designs the three guests with their vhost-user NICs
and static addresses and boots them through libvirt under TCG. Then: g2
serves sockperf, g1 runs a ping-pong against it through the switch (RTT
statistics and histogram), g1 against the blue uplink's namespace peer (a
peer outside the host), g3 reaches the red peer but not g2, the red peer
cannot reach g2; the PMD thread runs on the dataplane CPU at the data
plane's priority. ``rtkvm net rtt`` measures guest -> namespace peer and
``rtkvm guest delete`` unplugs the ports. Everything is torn down in ``finally`` and checked gone
(domains, switch processes, hugepages, sockets, namespaces).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtkvm.cli.main import cli
from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.backend import OvsDpdkBackend
from rtkvm.dataplane.layout import GuestNic, compute_layout, resolve_cpus
from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.settings import load_settings
from rtkvm.dataplane.stack import save_layout
from rtkvm.dataplane.threads import read_threads
from rtkvm.domain.design import VhostUserNic
from rtkvm.guest import lifecycle
from rtkvm.guest.create import CreatePlan, Image, default_spec, plan_guest, shared_pcpus_warning
from rtkvm.guest.netrun import ping_from_guest, rtt_client, serving
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.image.build import DEFAULT_CACHE, build_image
from rtkvm.net.model import HostWiring, UnmanagedNetwork, Uplink
from rtkvm.net.netns import NetnsPeer
from rtkvm.net.rtt import RttReport, render
from rtkvm.runtime.facts import runtime_facts

pytestmark = pytest.mark.e2e

NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"
TAG = os.getpid() % 100000
# guest -> (network, static address): one IP subnet for all, so only L2 keeps red apart
GUESTS = {
    f"rtkn{TAG}_g1": ("blue", "10.77.0.11/24"),
    f"rtkn{TAG}_g2": ("blue", "10.77.0.12/24"),
    f"rtkn{TAG}_g3": ("red", "10.77.0.13/24"),
}
G1, G2, G3 = GUESTS
BLUE_PEER, RED_PEER = "10.77.0.1/24", "10.77.0.2/24"
_T0 = time.monotonic()


def _ip(name: str) -> str:
    return GUESTS[name][1].split("/")[0]


def _say(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n[net e2e {time.monotonic() - _T0:6.1f}s] {text}", flush=True)


def _require_machine() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: libvirtd, QEMU, OVS-DPDK, hugepages, namespaces")
    tools = ("libvirtd", "qemu-system-x86_64", "ovsdb-server", "ovs-vsctl", "sockperf", "ip")
    missing = [t for t in tools if shutil.which(t) is None]
    assert not missing, f"missing {missing}: run `make setup`"


@pytest.fixture
def workdir() -> Iterator[Path]:
    _require_machine()
    up = CliRunner().invoke(cli, ["runtime", "up"])
    assert up.exit_code == 0, up.output
    tmp = Path(tempfile.mkdtemp(prefix="rtkvm-net-e2e-", dir="/tmp"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_rtt(report: RttReport, minimum: int) -> None:
    assert report.samples >= minimum, report.samples
    assert 0 < report.min_us <= report.percentiles[50.0] <= report.percentiles[99.0]
    assert report.percentiles[99.0] <= report.percentiles[99.99] <= report.max_us
    assert sum(report.histogram.counts) == report.samples
    assert report.histogram.rows()  # the histogram is kept


def test_guests_on_blue_and_red(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fs = HostFS("/", writable=True)
    settings = load_settings()
    topo = read_topology(fs)
    node_of = {cpu: topo.node_of_cpu(cpu) for cpu in topo.online}
    hugepages_before = fs.read(NR_HUGEPAGES).strip()
    image_dir = workdir / "image"
    built = build_image(DEFAULT_CACHE, image_dir)
    image = Image(built.kernel, built.initramfs)
    _say(capsys, f"image {built.initramfs_sha256[:16]} ({built.seconds}s)")

    plan = PartitionPlan(housekeeping=CpuSet([0]), rt_vcpu=CpuSet([1]), dataplane=CpuSet())
    cpus = resolve_cpus(
        plan,
        online=topo.online,
        node_of_cpu=node_of,
        dataplane_override=CpuSet([1]),
        allow_shared_with_rt=True,
    )
    socket_dir = workdir / "vhost"
    peers: list[NetnsPeer] = []
    ovs = OvsDpdk(settings, workdir / "run", fs)
    defined: list[str] = []
    try:
        blue_peer = NetnsPeer.create(f"rtkn-b{TAG}", f"rtknb{TAG}", BLUE_PEER)
        peers.append(blue_peer)
        red_peer = NetnsPeer.create(f"rtkn-r{TAG}", f"rtknr{TAG}", RED_PEER)
        peers.append(red_peer)
        wiring = HostWiring(
            (Uplink("physblue", blue_peer.host_if), Uplink("physred", red_peer.host_if))
        )
        networks = [UnmanagedNetwork("blue", "physblue"), UnmanagedNetwork("red", "physred")]
        layout = compute_layout(
            settings,
            cpus,
            node_of_cpu=node_of,
            nodes=[n.id for n in topo.nodes],
            networks=networks,
            wiring=wiring,
            socket_dir=str(socket_dir),
        )
        backend = OvsDpdkBackend(ovs, layout)
        save_layout(workdir / "run", layout)  # for the CLI calls below
        info = ovs.start(layout)
        _say(capsys, f"OVS-DPDK up in {info.seconds:.2f}s, IOVA {info.iova_mode}")
        for warning in cpus.warnings:
            _say(capsys, warning)

        facts = runtime_facts(fs, image.kernel, image.initramfs, want="tcg")
        plans: dict[str, CreatePlan] = {}
        for name, (network, address) in GUESTS.items():
            plugged = backend.plug(GuestNic(name, 0, network))
            assert plugged.mode == "server" and str(plugged.socket.parent) == str(socket_dir)
            plans[name] = plan_guest(
                name,
                default_spec(name),
                plan,
                topo,
                image,
                list(facts.quirks),
                accel="tcg",
                guest_dir=workdir / "guests",
                nics=(VhostUserNic(str(plugged.socket), mode="server"),),
                address=address,
            )
        shared = shared_pcpus_warning(plans)
        assert shared is not None and "pCPU 1" in shared
        _say(capsys, shared)
        (workdir / "guests").mkdir()
        with lifecycle.connect() as conn:
            for name, created in plans.items():
                assert f"rtkvm.ip={GUESTS[name][1]}" in created.xml
                lifecycle.define(conn, created.xml)
                defined.append(name)

            # PMD thread: on the dataplane CPU, at the data plane's FIFO priority.
            pid = ovs.pid("ovs-vswitchd")
            assert pid is not None
            pmds = [t for t in read_threads(fs, pid) if t.is_pmd]
            assert len(pmds) == 1
            pmd = pmds[0]
            assert pmd.cpus_allowed == CpuSet([1])
            assert (pmd.policy, pmd.rt_priority) == ("fifo", settings.pmd_priority)
            report = backend.verify()
            assert report.ok, report.render_table()
            _say(capsys, f"PMD {pmd.comm}: CPUs {pmd.cpus_allowed}, {pmd.policy}/{pmd.rt_priority}")

            g2_ip = _ip(G2)
            with serving(conn, G2, g2_ip, timeout=120):
                # Isolation, same subnet: g3 (red) reaches the red peer, not g2 (blue).
                probe = ping_from_guest(conn, G3, g2_ip, first_reach=red_peer.ip)
                assert not probe.reached and " 0 packets received" in probe.output, probe.output
                from_red = red_peer.exec(["ping", "-c", "3", "-W", "1", "-i", "0.3", g2_ip])
                assert from_red.returncode != 0, from_red.stdout
                from_blue = blue_peer.exec(["ping", "-c", "3", "-W", "2", "-i", "0.3", g2_ip])
                assert from_blue.returncode == 0, from_blue.stdout
                _say(capsys, f"isolation: {G3} (red) -> {G2} (blue): 0 of 3 answered; "
                     f"red peer -> {G2}: none; blue peer -> {G2}: answered")  # fmt: skip

                rtt = rtt_client(
                    conn,
                    G1,
                    g2_ip,
                    f"guest {G2}",
                    seconds=5,
                    mps=1000,
                    bucket_us=100,
                    warnings=cpus.warnings,
                )
        _check_rtt(rtt, 300)
        _say(capsys, render(rtt, histogram_rows=8))
        assert "10.77.0.12" in rtt.path

        # A peer outside the host (the namespace behind blue's uplink), through the CLI.
        outside = CliRunner().invoke(
            cli,
            [
                "net", "rtt", "--client-guest", G1, "--server-netns", blue_peer.netns,
                "--server-ip", blue_peer.ip, "--seconds", "5", "--mps", "1000",
                "--bucket-us", "100", "--timeout", "120", "-f", "json",
            ],
        )  # fmt: skip
        assert outside.exit_code == 0, outside.output
        data = json.loads(outside.output)
        assert data["samples"] >= 300 and 0 < data["min_us"] <= data["max_us"]
        assert sum(data["histogram"]["counts"]) == data["samples"]
        assert data["histogram"]["bucket_us"] == 100
        pct = {float(k): v for k, v in data["percentiles"].items()}
        assert data["min_us"] <= pct[50.0] <= pct[99.0] <= pct[99.99] <= data["max_us"]
        _say(
            capsys,
            f"RTT {data['path']}: min {data['min_us']:.1f} p50 {pct[50.0]:.1f} "
            f"p99 {pct[99.0]:.1f} p99.99 {pct[99.99]:.1f} max {data['max_us']:.1f} µs, "
            f"{data['samples']} samples",
        )

        # And the other way: the outside peer pings a guest that serves.
        inward = CliRunner().invoke(
            cli,
            [
                "net", "rtt", "--client-netns", blue_peer.netns, "--server-guest", G2,
                "--server-ip", g2_ip, "--seconds", "3", "--mps", "1000", "--timeout", "120",
            ],
        )  # fmt: skip
        assert inward.exit_code == 0, inward.output
        assert f"netns {blue_peer.netns} -> guest {G2} ({g2_ip})" in inward.output
        assert "min=" in inward.output and "p99.99=" in inward.output
        _say(capsys, inward.output.splitlines()[1].strip())

        # The CLI deletes the guests and unplugs their ports from the switch.
        for name in list(defined):
            deleted = CliRunner().invoke(
                cli, ["guest", "delete", name, "--net-rundir", str(workdir / "run")]
            )
            assert deleted.exit_code == 0, deleted.output
            assert f"removed port vhu-{name}-0" in deleted.output
            defined.remove(name)
        for physnet in ("physblue", "physred"):  # only the polled uplink is left
            assert ovs.vsctl("list-ports", f"rt-{physnet}").split() == [f"up-{physnet}"]
    finally:
        errors: list[str] = []
        with lifecycle.connect() as conn:
            for name in defined:
                lifecycle.delete(conn, name)
        errors += ovs.stop()
        for peer in peers:
            errors += peer.delete()
    assert not errors, errors
    with lifecycle.connect() as conn:
        assert not set(GUESTS) & {d.name() for d in conn.listAllDomains(0)}
    assert ovs.pid("ovs-vswitchd") is None and ovs.pid("ovsdb-server") is None
    assert fs.read(NR_HUGEPAGES).strip() == hugepages_before
    assert not list(socket_dir.glob("*.sock")), "vhost-user sockets left behind"
