"""End to end: `make demo`'s flow on this machine, through the real stack.

Runs scripts/demo.sh (the README's main job minus set-up, which `make test`
has done) into a temporary directory: host inspect, plan, doctor, tune
preview; libvirt, the PREEMPT_RT guest image, network blue's uplink (a
namespace peer) and OVS-DPDK; `rtkvm up` (API on SQLite + this host's agent);
an RT flavor, network blue and two RT servers placed by the scheduler; the
agent measures cyclictest in each and the round trip between them on blue;
`rtkvm report build` makes one report; demo-1 is rebooted, demo-2 stopped,
started and its QEMU killed outside rtkvm; then everything is torn down. The
test checks the report's figures and warnings (this machine is not RT-ready,
its guests run under TCG: the report must say both) and that nothing is left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtkvm.footprint import Footprint

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root: libvirtd, QEMU, OVS-DPDK, hugepages, namespaces")
    tmp = Path(tempfile.mkdtemp(prefix="rtkvm-demo-e2e-", dir="/tmp"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _domains() -> str:
    done = subprocess.run(
        ["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


def _run_demo(demo_dir: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RTKVM_DEMO_DIR": str(demo_dir), **extra_env}
    env.pop("RTKVM_URL", None)
    env.pop("RTKVM_TOKEN", None)
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )


def _assert_nothing_left(demo_dir: Path, hugepages_before: str, stderr: str = "") -> None:
    """The control plane, the switch, blue's peer: gone, and forgotten by the registry."""
    left = sorted(p.name for p in (demo_dir / "allinone").glob("*"))
    assert not (demo_dir / "allinone").exists(), (left, stderr[-3000:])
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    assert "rtkvm-demo-blue" not in netns.stdout
    procs = subprocess.run(["pgrep", "-af", str(demo_dir)], capture_output=True, text=True)
    assert procs.stdout.strip() == "", procs.stdout
    assert NR_HUGEPAGES.read_text().strip() == hugepages_before
    fp = Footprint()
    for kind in ("allinone", "switch"):
        assert not [r for r in fp.registered(kind) if str(demo_dir) in r["name"]], kind
    assert fp.lookup("netns_peer", "rtkvm-demo-blue") is None


def test_a_server_that_cannot_be_placed_fails_the_demo_loudly(demo_dir: Path) -> None:
    """A flavor no host can take: the demo exits non-zero, names the step and the
    scheduler's reason, prints no summary, and still tears everything down."""
    hugepages_before = NR_HUGEPAGES.read_text().strip()
    done = _run_demo(demo_dir, RTKVM_DEMO_VCPUS="64")
    assert done.returncode != 0, done.stdout[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert 'make demo FAILED in step "6/10 Control plane' in last, done.stderr[-3000:]
    assert f"its output: {demo_dir}/cloud.txt" in last
    why = done.stderr[done.stderr.index("last lines of") :]
    assert "rtkvm: " in why, done.stderr[-3000:]  # the refusal itself, repeated at the end
    assert "every step succeeded" not in done.stdout
    assert "report:" not in done.stdout
    assert "demo clean-up:" not in done.stderr, done.stderr[-3000:]
    _assert_nothing_left(demo_dir, hugepages_before, done.stderr)


def test_demo_flow(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hugepages_before = NR_HUGEPAGES.read_text().strip()
    started = time.monotonic()
    done = _run_demo(demo_dir)
    seconds = time.monotonic() - started
    with capsys.disabled():
        print(f"\n[demo e2e] scripts/demo.sh took {seconds:.0f} s (exit {done.returncode})")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert f"report:       {demo_dir}/report/report.txt" in done.stdout
    assert done.stdout.rstrip().endswith("make demo: every step succeeded")

    report = json.loads((demo_dir / "report" / "report.json").read_text())
    servers = {row["instance"]: row for row in report["cyclictest"]}
    assert set(servers) == {"demo-1", "demo-2"}
    for row in servers.values():
        assert row["state"] == "done", row
        assert row["figures"]["samples"] == 3000
        assert 0 < row["figures"]["min_us"] <= row["figures"]["max_us"]
        assert row["guest_realtime"] is True  # the guest kernel is PREEMPT_RT
        assert row["verify"] == "in effect", row["verify"]  # vCPU threads as designed
        assert (demo_dir / "report" / row["picture"]).stat().st_size > 0
    [rtt] = report["rtt"]
    cloud = (demo_dir / "cloud.txt").read_text()
    for name, address in (("demo-1", "192.0.2.11/24"), ("demo-2", "192.0.2.12/24")):
        assert f"{name}: eth0 has {address}, the address its user gave" in cloud, cloud[-2000:]
        console = (demo_dir / f"console-{name}.txt").read_text()  # through the API
        assert "RTKVM-READY" in console and "\x1b" not in console
    # The cloud requires qualified hosts: an RT server was refused until the host qualified.
    assert "before the host is qualified, an RT server is refused" in cloud, cloud[-3000:]
    assert "not qualified" in cloud
    qualified = json.loads((demo_dir / "qualify.json").read_text())
    assert (qualified["state"], qualified["current"]) == ("passed", True), qualified
    proof = qualified["proof"]
    free = [int(p) for p in qualified["free_pcpus"].split(",") if "-" not in p]
    assert [p["pcpu"] for p in proof["pcpus"]] == free, qualified
    assert all(p["worst_us"] is not None and p["samples"] >= 2000 for p in proof["pcpus"])
    [net] = proof["networks"]
    assert (net["network"], net["samples"] > 100, net["max_us"] > 0) == ("blue", True, True), net
    line = next(x for x in cloud.splitlines() if x.startswith("host ") and " qualified in " in x)
    with capsys.disabled():
        print(f"[demo e2e] {line}")
    asked = json.loads((demo_dir / "measure-rtt-blue.json").read_text())["params"]
    # between the addresses the user gave the servers on blue (no DHCP, none invented)
    assert (asked["client_address"], asked["server_address"]) == ("192.0.2.11/24", "192.0.2.12/24")
    assert (rtt["path"], rtt["network"], rtt["state"]) == ("demo-1 -> demo-2", "blue", "done")
    figures = rtt["figures"]
    assert figures["samples"] > 100
    assert 0 < figures["min_us"] <= figures["percentiles_us"]["p50"] <= figures["max_us"]
    assert (demo_dir / "report" / rtt["picture"]).stat().st_size > 0

    # A round trip across hosts: a second host on this machine with its own agent served
    # its half (its probe rebooted into the sockperf server), demo-1's host ran the client.
    across = json.loads((demo_dir / "rtt-across-hosts.json").read_text())
    first = json.loads((demo_dir / "hosts.json").read_text())[0]["name"]
    assert (across["host"], across["peer_host"]) == (first, "demo-host-2"), across
    assert (across["state"], across["peer_state"]) == ("done", "done"), across
    assert across["peer_result"]["role"] == "server", across
    assert across["peer_result"]["address"] == "192.0.2.19/24", across
    assert across["result"]["samples"] > 100 and across["result"]["max_us"] > 0, across
    assert "99.99" in json.dumps(across["result"]["percentiles"])
    shown = (demo_dir / "rtt-across-hosts.txt").read_text()
    assert "its server deleted, its agent stopped, the host removed" in shown, shown[-2000:]
    line = next(x for x in shown.splitlines() if x.startswith("round trip across hosts in"))
    with capsys.disabled():
        print(f"[demo e2e] {line}")

    # This machine is not an RT host: the report says so before any figure.
    warnings = "\n".join(report["warnings"])
    text = (demo_dir / "report" / "report.txt").read_text()
    if "not ready" in (demo_dir / "doctor.txt").read_text():
        assert "is not ready" in warnings
        assert "waived by an admin" in warnings
    if any(row["accel"] == "tcg" for row in servers.values()):
        assert "TCG" in warnings
    assert text.index("WARNING") < text.index("cyclictest in the guests")
    assert "host qualification: " in text and ": passed, worst " in text

    # An ordinary server on the same host: no RT pCPU, on the housekeeping CPUs only, and
    # the agent's check of its live domain says so.
    plan = json.loads((demo_dir / "plan.json").read_text())
    plain = json.loads((demo_dir / "power-demo-plain.json").read_text())
    assert (plain["state"], plain["rt_cores"], plain["vcpu_pins"]) == ("active", 0, [])
    assert plain["floating_cpus"] == plan["housekeeping"] == plain["emulator_cpus"]
    assert plain["rt_state"] == "verified", plain["rt_reasons"]
    pins = (demo_dir / "demo-plain-vcpupin.txt").read_text()
    assert pins.count(plan["housekeeping"]) >= 2, pins  # vCPU 0 and the emulator

    # Power: demo-1 rebooted into a new QEMU and checked again; demo-2 stopped, started,
    # then its QEMU killed outside rtkvm, which the API shows as stopped.
    power = (demo_dir / "power.txt").read_text()
    assert "demo-1 rebooted in" in power and "QEMU pid" in power
    rebooted = json.loads((demo_dir / "power-demo-1.json").read_text())
    assert (rebooted["state"], rebooted["task"]) == ("active", None)
    assert rebooted["rt_state"] != "unverified"
    stopped = json.loads((demo_dir / "power-demo-2-stopped.json").read_text())
    assert (stopped["state"], stopped["task"]) == ("stopped", None)
    killed = json.loads((demo_dir / "power-demo-2-killed.json").read_text())
    assert killed["state"] == "stopped"
    assert "without a stop through rtkvm" in killed["fault"]

    # The tenant's own system: the Debian RT image uploaded, two RT servers booted from their
    # own copy-on-write disks to a login prompt on a PREEMPT_RT kernel, beside the ordinary
    # server; the disk on an I/O thread on the housekeeping CPUs; measured through their
    # guest agents, never rebooted into the probe; all gone after.
    image = json.loads((demo_dir / "image.json").read_text())
    assert (image["status"], image["disk_format"]) == ("active", "qcow2"), image
    tenant = (demo_dir / "tenant.txt").read_text()
    fingerprint = json.loads((demo_dir / "keypair.json").read_text())["fingerprint"]
    for name, address in (("demo-debian", "192.0.2.13/24"), ("demo-debian-2", "192.0.2.14/24")):
        debian = json.loads((demo_dir / f"{name}.json").read_text())
        assert (debian["state"], debian["image"], debian["disk_gb"]) == ("active", "debian-rt", 3)
        assert debian["rt_cores"] == 1 and debian["flavor"] == "tenant-rt", debian  # RT servers
        assert debian["networks"][0]["address"] == address, debian
        console = (demo_dir / f"console-{name}.txt").read_text()
        version = next(line for line in console.splitlines() if "Linux version" in line)
        assert "PREEMPT_RT" in version and "-rt-amd64" in version, version
        assert "login:" in console and "\x1b" not in console
        said = next(
            x for x in tenant.splitlines() if "RTKVM-USERDATA" in x and f"host={name} " in x
        )
        for want in ("file=written_by_user-data", f"key={fingerprint}", f"eth0={address}"):
            assert want in said, said
    assert "cache': 'none'" in tenant and "'iothread': '1'" in tenant, tenant
    # their disks are scheduled: 3 GiB each promised on the host, of what its agent reported
    disk_host = json.loads((demo_dir / "host-tenants.json").read_text())
    assert disk_host["disk_gb_used"] == 6 and disk_host["disk_gb_total"] >= 6, disk_host
    assert f"its I/O thread on CPUs {plan['housekeeping']} " in tenant, tenant
    # the round trip between the two, through their guest agents, on their users' addresses
    agent_rtt = json.loads((demo_dir / "measure-guest-agent-rtt.json").read_text())
    assert agent_rtt["state"] == "done", agent_rtt
    assert (agent_rtt["params"]["client_address"], agent_rtt["params"]["server_address"]) == (
        "192.0.2.13/24",
        "192.0.2.14/24",
    )
    rtt_result = agent_rtt["result"]
    assert rtt_result["method"] == "guest-agent"
    assert rtt_result["path"] == "demo-debian -> demo-debian-2 (192.0.2.14)", rtt_result["path"]
    assert rtt_result["samples"] > 100 and 0 < rtt_result["min_us"] <= rtt_result["max_us"]
    assert rtt_result["vcpus"] == {"demo-debian": "1", "demo-debian-2": "1"}  # the RT vCPU
    for before, after in rtt_result["guest_uptime_s"].values():
        assert after > before > 30  # both systems up since their boot: not rebooted
    if rtt_result["accel"] == "tcg":
        assert any("TCG" in w for w in rtt_result["warnings"]), rtt_result["warnings"]
    agent_run = json.loads((demo_dir / "measure-guest-agent-demo-debian.json").read_text())
    assert agent_run["state"] == "done", agent_run
    result = agent_run["result"]
    assert result["method"] == "guest-agent" and result["boot_seconds"] is None
    before, after = result["guest_uptime_s"]
    assert after > before > 30  # the same system, up since its boot: not rebooted
    assert result["latency"]["threads"][0]["max_us"] > 0
    assert result["guest_realtime"] is True
    # a tenant's system that powers itself off shows as stopped (libvirt's event)
    poweroff = json.loads((demo_dir / "demo-debian-2-poweroff.json").read_text())
    assert poweroff["state"] == "stopped", poweroff
    assert "demo-debian-2 powered itself off" in tenant
    assert "demo-debian and demo-debian-2, their disks and their seeds are gone" in tenant
    # logged in as root on its serial line through the API's websocket (the agent's relay)
    session = (demo_dir / "console-session-demo-debian.txt").read_text(errors="replace")
    uname = session[session.index("uname -v") :]
    assert "PREEMPT_RT" in uname and "\nwritten by user-data" in uname.replace("\r", ""), session
    assert "RTKVM-CONSOLE-42" in session, session  # the shell ran what was typed
    with capsys.disabled():
        for line in tenant.splitlines():
            words = ("login prompt", "uploaded and", "ran ", "guest agent", "logged in as root")
            words += ("round trip demo-debian", "powered itself off")
            if any(w in line for w in words):
                print(f"[demo e2e] {line}")
    assert not list(Path("/var/lib/rtkvm/guests").glob("*.disk.qcow2"))

    # The host rebooted (in systemd's order, without systemd): the switch came back with
    # blue, the agent reconciled; the servers that were active run again, checked after it;
    # the stopped one stayed stopped.
    reboot = (demo_dir / "reboot.txt").read_text()
    assert "reconciled: 2 adopted, 0 vanished, 0 unknown domains" in reboot, reboot
    back = next(line for line in reboot.splitlines() if line.startswith("back "))
    with capsys.disabled():
        print(f"[demo e2e] reboot: {back}")
    [host] = json.loads((demo_dir / "reboot-hosts.json").read_text())
    assert (host["status"], host["dataplane_state"]) == ("up", "ready"), host
    assert "physblue" in host["physnets"], host
    # blue's uplink is polled by a PMD (DPDK af_packet on the veth to the peer)
    assert host["dataplane"]["uplinks"]["physblue"].startswith("polled: DPDK af_packet"), host
    for name in ("demo-1", "demo-plain"):
        back = json.loads((demo_dir / f"reboot-{name}.json").read_text())
        assert (back["state"], back["task"]) == ("active", None), back
        assert back["rt_state"] != "unverified", back
        assert f"{name} after the reboot: " in reboot
    stayed = json.loads((demo_dir / "reboot-demo-2.json").read_text())
    assert stayed["state"] == "stopped"

    # Nothing is left: servers' domains, the control plane, the switch, blue's peer.
    ids = [
        json.loads((demo_dir / f"{n}.json").read_text())["id"]
        for n in ("demo-1", "demo-2", "demo-plain", "demo-debian", "demo-debian-2")
    ]
    left = _domains()
    assert not [i for i in ids if i in left], left
    _assert_nothing_left(demo_dir, hugepages_before)
