"""`make openstack-demo`: rtkvm as the RT layer of a real OpenStack, on this machine.

1. `rtkvm openstack up`: Keystone, Placement, Glance, Neutron and Nova from PyPI, started by
   rtkvm, with nova-compute's RT options from this host's partition plan and hugepages for
   the guests;
2. rtkvm's API with this host's agent in OpenStack mode (`rtkvm up --engine openstack`):
   the host's traits in Placement (RT readiness, or the admin's waiver said loudly on a
   host that is not ready), and the host in rtkvm's API as Nova's (never scheduled to);
3. rtkvm's probe guest in Glance, and RT flavors synced into Nova: FIFO priority 40 and 30
   (rtkvm's own keys), and one that needs a network no host is wired to;
4. RT servers booted through Nova's API: where Nova put them, their RT vCPU's policy,
   priority and CPU and their emulator threads' CPUs, read from /proc; rtkvm's verdict on
   the server and in rtkvm's API; cyclictest inside, read from Nova's console and kept in
   rtkvm's API; a hard reboot through Nova (a new QEMU) gets the flavor's priority again;
5. what Nova refuses: the unwired network, and any RT server once the host's RT trait is
   withdrawn, both as Nova's "No valid host";
6. Neutron on rtkvm's OVS-DPDK (started first, `rtkvm net up`, with blue and red each behind
   a polled uplink to a namespace peer, and `rtkvm openstack up --switch`): rtkvm's networks
   synced into Neutron, probe servers booted through Nova on unaddressed Neutron ports, the
   sockperf round trip between two of them on blue (their vhost-user ports on rtkvm's PMD,
   their memory shared on hugepages), a server on blue answered by blue's outside peer
   through the polled uplink, a server on red that reaches red's peer and not blue's, and
   the switch's threads still in place (`rtkvm net status`);
7. teardown: servers deleted, the agent, the stack and the switch stopped and purged, the
   peers removed, and nothing left.

Writes summary.txt and summary.json (and the logs, measurements and a latency report) to
$RTKVM_OS_DEMO_DIR (default ./openstack-demo-output). Every check that does not hold ends
the demo with a non-zero exit naming the step; the summary is written only when all held.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rtkvm.allinone.stack import default_plan
from rtkvm.cpuset import CpuSet
from rtkvm.guest.verify import read_threads
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.net.model import load_wiring
from rtkvm.net.rtt import render
from rtkvm.openstack.aio.layout import StackLayout, aio_settings
from rtkvm.openstack.netprobe import ping_from, round_trip
from rtkvm.openstack.novaguest import parse_nova_guest
from rtkvm.openstack.session import CloudSession
from rtkvm.openstack.traits import names
from rtkvm.serialize import dumps

OUT = Path(os.environ.get("RTKVM_OS_DEMO_DIR", "openstack-demo-output")).resolve()
RTKVM = str(Path(sys.executable).parent / "rtkvm")
LAYOUT = StackLayout()
HUGEPAGES = 160
SWITCH = OUT / "switch"
PEERS = {  # network -> (namespace, host end of the veth: the uplink, the peer's address)
    "blue": ("rtkvm-osdemo-blue", "rtkosdblue", "10.78.0.254/24"),
    "red": ("rtkvm-osdemo-red", "rtkosdred", "10.78.0.253/24"),
    "green": ("rtkvm-osdemo-green", "rtkosdgreen", "10.78.1.254/24"),
}
VLANS = {"green": 101}
"""Networks that are VLANs on their physnet: Neutron makes them provider:network_type vlan,
rtkvm's uplink carries the tag (a trunk), and the outside peer answers tagged frames only."""
NET_FLAVOR: dict[str, Any] = {"name": "rtkvm-demo-net", "vcpus": 1, "ram": 128, "disk": 0}
"""Not RT: this host has one RT pCPU and a round trip needs two servers at once. Its memory
is on hugepages, which vhost-user needs (QEMU shares it with the switch)."""
API_DIR = OUT / "rtkvm-api"
API_PORT = 8755
KNOWN_WAIVERS = {"memory.locked", "accel.kvm", "cpu.passthrough"}
FLAVORS = {
    "rt.p40": {"priority": 40, "networks": []},
    "rt.p30": {"priority": 30, "networks": []},
    "rt.nowire": {"priority": 40, "networks": ["nowire"]},
}


class DemoError(Exception):
    pass


def say(text: str) -> None:
    print(f"\033[1m== {text}\033[0m", flush=True)


def run(*args: str, log: str, timeout: float = 900, ok: tuple[int, ...] = (0,)) -> str:
    with (OUT / log).open("a") as out:
        done = subprocess.run(
            [RTKVM, *args], capture_output=True, text=True,
            timeout=timeout, check=False, env={**os.environ, **ENV},
        )  # fmt: skip
        out.write(done.stderr)
        out.write(done.stdout)
    if done.returncode not in ok:
        said = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise DemoError(
            f"rtkvm {' '.join(args[:3])} failed ({done.returncode}); see {OUT / log}; it said:\n"
            f"{said}"
        )
    return done.stdout


def check(ok: bool, what: str) -> None:
    if not ok:
        raise DemoError(what)
    print(f"   ok: {what}", flush=True)


ENV = {
    "OS_CLIENT_CONFIG_FILE": str(LAYOUT.clouds_yaml),
    "OS_CLOUD": aio_settings().cloud,
}


def admin_env() -> dict[str, str]:
    """rtkvm's CLI as the admin of the demo's rtkvm API."""
    return {
        "RTKVM_URL": f"http://127.0.0.1:{API_PORT}",
        "RTKVM_TOKEN": (API_DIR / "admin.token").read_text().strip(),
    }


def rtkvm_api(*args: str, log: str, ok: tuple[int, ...] = (0,)) -> Any:
    """``rtkvm cloud ARGS -f json`` against the demo's rtkvm API, decoded."""
    with (OUT / log).open("a") as out:
        done = subprocess.run(
            [RTKVM, "cloud", *args, "-f", "json"], stdout=subprocess.PIPE, stderr=out, text=True,
            timeout=60, check=False, env={**os.environ, **admin_env()},
        )  # fmt: skip
        out.write(done.stdout)
    if done.returncode not in ok:
        raise DemoError(f"rtkvm cloud {' '.join(args)} failed ({done.returncode}); see {OUT / log}")
    return json.loads(done.stdout)


def agent_state() -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads((OUT / "node" / "guests.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return doc


def wait(pred: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(1.0)
    raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")


def boot(s: CloudSession, name: str, flavor: str, image: str) -> dict[str, Any]:
    flavors = {f["name"]: f["id"] for f in s.call("compute", "GET", "/flavors/detail")["flavors"]}
    body = {"server": {"name": name, "flavorRef": flavors[flavor], "imageRef": image,
                       "networks": "none"}}  # fmt: skip
    sid = s.call("compute", "POST", "/servers", json=body, microversion="2.86", ok=(202,))[
        "server"
    ]["id"]

    def settled() -> dict[str, Any] | None:
        server: dict[str, Any] = s.call("compute", "GET", f"/servers/{sid}", microversion="2.86")[
            "server"
        ]
        return server if server["status"] in ("ACTIVE", "ERROR") else None

    server: dict[str, Any] = wait(settled, f"server {name} to settle", 300)
    return server


def delete(s: CloudSession, sid: str) -> None:
    s.call("compute", "DELETE", f"/servers/{sid}", ok=(204, 404))

    def gone() -> bool:
        try:
            s.call("compute", "GET", f"/servers/{sid}", ok=(200,))
        except Exception:
            return True
        return False

    wait(gone, f"server {sid} to be deleted", 120)


def observe(sid: str, plan: PartitionPlan) -> dict[str, Any]:
    """What /proc and libvirt say of the server's guest (Nova's XML, the threads)."""
    import libvirt

    conn = libvirt.open("qemu:///system")
    try:
        dom = conn.lookupByUUIDString(sid)
        xml, domain = dom.XMLDesc(0), dom.name()
    finally:
        conn.close()
    guest = parse_nova_guest(xml)
    nova_prio = xml.split("<vcpusched", 1)[1].split("priority='", 1)[1].split("'", 1)[0]
    pid = int(Path(f"/var/run/libvirt/qemu/{domain}.pid").read_text().strip())
    threads = read_threads(HostFS("/"), pid)
    qemu_pid = pid
    rt = [t for t in threads if t.vcpu is not None and t.policy in ("fifo", "rr")]
    others = [t for t in threads if t.vcpu is None]
    emulator_cpus = CpuSet(c for t in others for c in t.cpus)
    return {
        "domain": domain,
        "qemu_pid": qemu_pid,
        "flavor": guest.flavor if guest else None,
        "nova_rendered_priority": int(nova_prio),
        "rt_vcpus": [
            {
                "vcpu": t.vcpu,
                "tid": t.tid,
                "policy": t.policy,
                "priority": t.rt_priority,
                "cpus": t.cpus.format(),
            }
            for t in rt
        ],
        "emulator_cpus": emulator_cpus.format(),
        "cpu_dedicated_set": plan.rt_vcpu.format(),
        "cpu_shared_set": plan.housekeeping.format(),
    }


def rt_server(
    s: CloudSession,
    name: str,
    flavor: str,
    image: str,
    plan: PartitionPlan,
    summary: dict[str, Any],
    *,
    restart: bool = False,
) -> None:
    want = int(FLAVORS[flavor]["priority"])  # type: ignore[call-overload]
    say(f"RT server {name}: flavor {flavor} (rtkvm priority fifo/{want})")
    server = boot(s, name, flavor, image)
    check(server["status"] == "ACTIVE", f"{name} is ACTIVE (got {server['status']}: "
          f"{(server.get('fault') or {}).get('message')})")  # fmt: skip
    host = server.get("OS-EXT-SRV-ATTR:host")
    check(host == socket.gethostname(), f"Nova placed {name} on this host ({host})")

    def verdict() -> str | None:
        meta = s.call("compute", "GET", f"/servers/{server['id']}/metadata")["metadata"]
        value = meta.get("rtkvm_rt")
        return value if value and value.startswith(("verified", "degraded")) else None

    summary_line = wait(verdict, f"rtkvm's verdict on {name}", 120)
    seen = observe(server["id"], plan)
    check(summary_line.startswith(f"verified: fifo/{want}"), f"rtkvm says: {summary_line}")
    vcpu = seen["rt_vcpus"][0] if seen["rt_vcpus"] else {}
    check(
        len(seen["rt_vcpus"]) == 1 and (vcpu["policy"], vcpu["priority"]) == ("fifo", want),
        f"RT vCPU thread runs fifo/{want} (Nova rendered fifo/{seen['nova_rendered_priority']})",
    )
    dedicated, shared = seen["cpu_dedicated_set"], seen["cpu_shared_set"]
    check(
        CpuSet.parse(vcpu["cpus"]) <= CpuSet.parse(dedicated),
        f"RT vCPU on CPU {vcpu['cpus']}, within cpu_dedicated_set {dedicated}",
    )
    check(
        CpuSet.parse(seen["emulator_cpus"]) <= CpuSet.parse(shared),
        f"emulator threads on CPU {seen['emulator_cpus']}, within cpu_shared_set {shared}",
    )

    def audited() -> list[dict[str, Any]]:
        """The agent's record of the server: written after the verdict on the server (its
        round writes the metadata first, then guests.json)."""
        # guests.json may still hold the round before the verdict on the server (the
        # verdict's reasons then): wait for the round that verified it
        return [g for g in agent_state().get("guests", [])
                if g["server_id"] == server["id"] and g["verdict"] == "verified"]  # fmt: skip

    guests = wait(audited, f"{name} verified in the node agent's guests.json", 60)
    waived = set(guests[0]["waived"]) if guests else set()
    named = ", ".join(sorted(waived)) or "none"
    check(
        bool(guests) and not guests[0]["reasons"] and waived <= KNOWN_WAIVERS,
        f"the audit names only the host's known waivers ({named})",
    )
    kept = wait(lambda: _api_verdict(server["id"], summary_line), "the verdict in rtkvm's API", 60)
    check(
        kept["host"] == host and kept["verdict"] == "verified" and not kept["stale"],
        f"rtkvm's API holds the verdict of {name} on {kept['host']}: {kept['summary']}",
    )
    restarted = None
    if restart:
        restarted = hard_reboot_keeps_priority(s, server["id"], name, want, seen, plan)
    measured = OUT / f"measure-{name}.json"
    run("openstack", "measure", server["id"], "--plan", str(LAYOUT.root / "etc" / "plan.json"),
        "--save", str(measured), "--rtkvm-api", admin_env()["RTKVM_URL"],
        "--agent-token-file", str(API_DIR / "agent.token"),
        log="measure.log", timeout=300)  # fmt: skip
    result = json.loads(measured.read_text())
    samples = sum(t["in_histogram"] + t["overflows"] for t in result["latency"]["threads"])
    check(samples > 0, f"cyclictest measured in {name}: {samples} samples ({result['accel']})")
    shown = rtkvm_api("guest", "show", server["id"], log="rtkvm-cloud.log")
    in_api = [m for m in shown["measurements"] if m["result"]["latency"] == result["latency"]]
    check(
        len(in_api) == 1 and in_api[0]["emulated"] == (result["accel"] != "kvm"),
        f"rtkvm's API keeps the measurement of {name} (emulated: {in_api[0]['emulated']})"
        if in_api
        else f"rtkvm's API keeps the measurement of {name}",
    )
    summary["servers"].append(
        {
            "name": name,
            "server_id": server["id"],
            "host": host,
            "flavor": flavor,
            "rtkvm_verdict": summary_line,
            "observed": seen,
            "waived": sorted(waived),
            "rtkvm_api": {
                "verdict": kept["verdict"],
                "summary": kept["summary"],
                "measurement": in_api[0]["id"],
            },
            "restarted": restarted,
            "cyclictest": {
                "accel": result["accel"],
                "samples": samples,
                "max_us": max(t["max_us"] for t in result["latency"]["threads"]),
                "avg_us": result["latency"]["threads"][0]["avg_us"],
                "file": str(measured),
            },
        }
    )
    delete(s, server["id"])


def _api_verdict(sid: str, summary_line: str) -> dict[str, Any] | None:
    rows = rtkvm_api("guest", "list", log="rtkvm-cloud.log", ok=(0, 1))
    found = [r for r in rows if r["server_id"] == sid and r["summary"] == summary_line]
    return found[0] if found else None


def hard_reboot_keeps_priority(
    s: CloudSession, sid: str, name: str, want: int, before: dict[str, Any], plan: PartitionPlan
) -> dict[str, Any]:
    """A hard reboot through Nova: libvirt starts a new QEMU at Nova's host-wide priority, and
    the agent (woken by libvirt's start event) gives the RT vCPU the flavor's again."""
    say(f"hard reboot of {name} through Nova: a new QEMU process")
    began = time.monotonic()
    s.call("compute", "POST", f"/servers/{sid}/action", json={"reboot": {"type": "HARD"}},
           microversion="2.86", ok=(202,))  # fmt: skip

    def again() -> dict[str, Any] | None:
        server = s.call("compute", "GET", f"/servers/{sid}", microversion="2.86")["server"]
        if server["status"] != "ACTIVE" or server.get("OS-EXT-STS:task_state"):
            return None
        try:
            seen = observe(sid, plan)
        except (OSError, ValueError, IndexError):
            return None
        vcpus = seen["rt_vcpus"]
        fresh = seen["qemu_pid"] != before["qemu_pid"]
        right = len(vcpus) == 1 and (vcpus[0]["policy"], vcpus[0]["priority"]) == ("fifo", want)
        return seen if fresh and right else None

    seen = wait(again, f"{name}'s new RT vCPU thread at fifo/{want}", 180)
    seconds = round(time.monotonic() - began, 1)
    check(True, f"after the reboot (QEMU pid {before['qemu_pid']} -> {seen['qemu_pid']}) the RT "
          f"vCPU runs fifo/{want} again, {seconds} s after the request")  # fmt: skip
    return {"qemu_pid_before": before["qemu_pid"], "qemu_pid_after": seen["qemu_pid"],
            "rt_vcpus": seen["rt_vcpus"], "seconds": seconds}  # fmt: skip


def refused(s: CloudSession, name: str, flavor: str, image: str, why: str) -> dict[str, Any]:
    say(f"refused: {why}")
    server = boot(s, name, flavor, image)
    fault = (server.get("fault") or {}).get("message", "")
    check(server["status"] == "ERROR" and "No valid host" in fault,
          f"Nova refused {name} with \"{fault}\"")  # fmt: skip
    delete(s, server["id"])
    return {"name": name, "flavor": flavor, "why": why, "fault": fault}


def demo(summary: dict[str, Any]) -> None:
    say("rtkvm's probe guest image (built from Debian packages; cached)")
    built = run("image", "build", log="image.log", timeout=1200).strip().splitlines()
    print(f"   {built[-1] if built else 'built'}", flush=True)
    say("rtkvm's switch: OVS-DPDK with blue and red, each behind a polled uplink to a peer")
    switch_up(summary)
    say("rtkvm openstack up: Keystone, Placement, Glance, Neutron, Nova (started by rtkvm)")
    up = json.loads(run("openstack", "up", "--guest-hugepages", str(HUGEPAGES), "--switch",
                        str(SWITCH), "--plan", str(OUT / "plan.json"), "-f", "json",
                        log="up.log"))  # fmt: skip
    summary["up"] = {"seconds": up["seconds"], "virt_type": up["virt_type"],
                     "warnings": up["warnings"]}  # fmt: skip
    for warning in up["warnings"]:
        print(f"   WARNING: {warning}")
    plan = PartitionPlan.load(LAYOUT.root / "etc" / "plan.json")
    doctor = json.loads(run("host", "doctor", "--plan", str(LAYOUT.root / "etc" / "plan.json"),
                            "-f", "json", log="doctor.log", timeout=120, ok=(0, 1)))  # fmt: skip
    ready = doctor.get("verdict") == "ready"
    summary["doctor_verdict"] = doctor.get("verdict")
    node = ["--state-dir", str(OUT / "node")]
    if not ready:
        reason = "demo on a machine that is not an RT host"
        run("openstack", "waiver", "set", reason, *node, log="agent.log")
        summary["rt_waiver"] = reason
        print(f"   WARNING: RT WAIVER ({reason}): RT guarantees are OFF on this host")
    say("rtkvm's API, with this host's agent in OpenStack mode (rtkvm up --engine openstack)")
    summary["_rtkvm_api"] = True
    run("up", "--engine", "openstack", "--state-dir", str(API_DIR), "--port", str(API_PORT),
        "--plan", str(LAYOUT.root / "etc" / "plan.json"), "--os-cloud", ENV["OS_CLOUD"],
        "--os-config-file", ENV["OS_CLIENT_CONFIG_FILE"], "--node-dir", str(OUT / "node"),
        "--interval", "2", "--switch-rundir", str(SWITCH), "--wiring", str(OUT / "wiring.toml"),
        log="rtkvm-up.log", timeout=300)  # fmt: skip
    me = rtkvm_api("host", "show", socket.gethostname(), log="rtkvm-cloud.log")
    check(me["engine"] == "openstack" and me["status"] == "up",
          f"rtkvm's API has this host as Nova's ({me['engine']}, {me['status']}, doctor "
          f"{me['doctor_verdict']}, waiver {me['rt_waiver']!r})")  # fmt: skip
    summary["rtkvm_api_host"] = {k: me[k] for k in ("engine", "status", "doctor_verdict")}
    rt_trait = "CUSTOM_RTKVM_RT_READY" if ready else "CUSTOM_RTKVM_RT_ADMITTED"
    traits = wait(lambda: rt_trait in agent_state().get("traits", []) and agent_state()["traits"],
                  f"{rt_trait} on this host's provider", 120)  # fmt: skip
    check(True, f"this host carries {', '.join(traits)}")
    # one source of wiring: a wire's trait once Neutron's OVS agent maps it to rtkvm's switch
    wiring = load_wiring((OUT / "wiring.toml").read_text(), source="the demo's wiring")
    nets = sorted(names().network_trait(u.physnet) for u in wiring.uplinks)
    wait(
        lambda: set(nets) <= set(agent_state().get("traits", [])),
        f"{', '.join(nets)} on this host's provider (wired, bridged, mapped by Neutron)",
        120,
    )
    withheld = agent_state().get("withheld_networks")
    check(withheld == [], f"network traits {', '.join(nets)} published, none withheld "
          f"(withheld: {withheld})")  # fmt: skip
    summary["network_traits"] = nets
    summary["traits"] = traits
    say("rtkvm's probe guest into Glance; RT flavors into Nova")
    run("openstack", "image", "upload", "--loops", "1000", log="image.log", timeout=300)
    s = CloudSession(ENV["OS_CLOUD"], LAYOUT.clouds_yaml)
    image = s.call("image", "GET", "/v2/images?name=rtkvm-probe")["images"][0]["id"]
    waive = [] if ready else ["--admit-waived"]
    for name, flavor in FLAVORS.items():
        spec = {"name": name, "vcpus": 2, "memory_mib": 256, "cpu_policy": "mixed",
                "realtime_mask": "^0", "emulator_threads_policy": "share", "page_size": "2M",
                "priority": flavor["priority"]}  # fmt: skip
        path = OUT / f"flavor-{name}.json"
        path.write_text(json.dumps(spec))
        nets = [a for n in flavor["networks"] for a in ("--network", n)]  # type: ignore[attr-defined]
        run("openstack", "flavor", "sync", str(path), *nets, *waive, log="flavors.log")
    summary["flavors"] = {n: f["priority"] for n, f in FLAVORS.items()}
    rt_server(s, "demo-p40", "rt.p40", image, plan, summary)
    rt_server(s, "demo-p30", "rt.p30", image, plan, summary, restart=True)
    summary["refused"].append(
        refused(s, "demo-nowire", "rt.nowire", image, "a network no host is wired to")
    )
    if not ready:
        run("openstack", "waiver", "clear", *node, log="agent.log")
        wait(lambda: rt_trait not in agent_state().get("traits", [rt_trait]),
             f"{rt_trait} to be withdrawn", 60)  # fmt: skip
        summary["refused"].append(
            refused(s, "demo-withdrawn", "rt.p40", image, "the host's RT trait withdrawn")
        )
    neutron(s, summary)
    measurements = [str(OUT / f"measure-{x['name']}.json") for x in summary["servers"]]
    title = "cyclictest in Nova servers (rtkvm openstack demo)"
    run("report", "build", *measurements, "-o", str(OUT / "report"), "--title", title,
        log="report.log")  # fmt: skip


def switch_up(summary: dict[str, Any]) -> None:
    plan = default_plan(HostFS("/"))  # what `rtkvm openstack up` plans when given none
    (OUT / "plan.json").write_text(plan.to_json() + "\n")
    rt = plan.rt_vcpu.format()
    summary["_peers"] = []
    for net, (ns, uplink, address) in PEERS.items():
        tag = ["--vlan", str(VLANS[net])] if net in VLANS else []
        run("net", "peer", "add", ns, "--uplink", uplink, "--address", address, *tag,
            log="peers.log")  # fmt: skip
        summary["_peers"].append(net)
    nets = "".join(
        f'[[network]]\nname = "{n}"\nphysnet = "phys{n}"\n'
        + (f"vlan = {VLANS[n]}\n" if n in VLANS else "") + "\n"
        for n in PEERS
    )  # fmt: skip
    wires = "".join(
        f'[[uplink]]\nphysnet = "phys{n}"\ninterface = "{p[1]}"\n\n' for n, p in PEERS.items()
    )
    (OUT / "networks.toml").write_text(nets)
    (OUT / "wiring.toml").write_text(wires)
    summary["_switch"] = True
    # No core to spare for the data plane on this host: the PMD shares the RT vCPUs' CPU.
    run("net", "up", "--rundir", str(SWITCH), "--plan", str(OUT / "plan.json"), "--networks",
        str(OUT / "networks.toml"), "--wiring", str(OUT / "wiring.toml"), "--dataplane-cpus",
        rt, "--share-with-rt-vcpus", log="net-up.log", timeout=300)  # fmt: skip
    check(True, f"OVS-DPDK up in {SWITCH}: PMD on CPU {rt} (shared with the RT vCPUs here)")


def appctl(*args: str) -> str:
    done = subprocess.run(
        ["ovs-appctl", "-t", str(SWITCH / "ovs-vswitchd.ctl"), "--timeout=20", *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise DemoError(f"ovs-appctl {' '.join(args)} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


def neutron(s: CloudSession, summary: dict[str, Any]) -> None:
    say("Neutron: rtkvm's networks as provider networks, probe servers on unaddressed ports")
    synced = json.loads(run("openstack", "network", "sync", str(OUT / "networks.toml"), "-f",
                            "json", log="neutron.log"))  # fmt: skip
    names = sorted(PEERS)
    kinds: dict[str, tuple[str, int | None]] = {}
    for name in names:
        (made,) = s.call("network", "GET", f"/v2.0/networks?name={name}",
                         what=f"show {name}")["networks"]  # fmt: skip
        kinds[name] = (made["provider:network_type"], made.get("provider:segmentation_id"))
    wanted = {n: ("vlan", VLANS[n]) if n in VLANS else ("flat", None) for n in names}
    said = ", ".join(f"{n} ({kind}{f' {seg}' if seg else ''})" for n, (kind, seg) in kinds.items())
    check(sorted(n["name"] for n in synced) == names and kinds == wanted,
          f"Neutron has {said}: no subnet, port security off")  # fmt: skip
    wiring = json.loads(run("openstack", "network", "check", "--wiring", str(OUT / "wiring.toml"),
                            "--switch-rundir", str(OUT / "switch"), "-f", "json",
                            log="wiring-check.log", ok=(0, 1)))  # fmt: skip
    failed = "; ".join(f["message"] for f in wiring["findings"] if f["status"] != "pass")
    check(
        wiring["verdict"] == "agree",
        "the wiring (so the traits), rtkvm's switch and Neutron's "
        f"OVS agent agree ({len(wiring['findings'])} checks){': ' + failed if failed else ''}",
    )
    flavor = s.call("compute", "POST", "/flavors", json={"flavor": NET_FLAVOR}, ok=(200,),
                    what="create the probe flavor")["flavor"]  # fmt: skip
    huge = {"extra_specs": {"hw:mem_page_size": "2MB"}}
    s.call("compute", "POST", f"/flavors/{flavor['id']}/os-extra_specs", json=huge,
           what="hugepages for vhost-user")  # fmt: skip
    served: dict[str, Any] = {}

    def inspect(servers: list[Any]) -> None:
        rxq = appctl("dpif-netdev/pmd-rxq-show")
        ports = [p for m in servers for (_, pid, _) in m.ports for p in [f"vhu{pid[:11]}"]]
        served["rxq"] = rxq
        served["ports_polled"] = [p for p in ports if p in rxq]
        xml = [subprocess.run(["virsh", "-c", "qemu:///system", "dumpxml", name],
                              capture_output=True, text=True, check=False).stdout
               for name in (instance_name(s, m.server_id) for m in servers)]  # fmt: skip
        served["memaccess_shared"] = all("memAccess='shared'" in x and "hugepages" in x
                                         for x in xml)  # fmt: skip

    say("round trip through Nova, Neutron and rtkvm's OVS-DPDK: two probe servers on blue")
    report = round_trip(
        s, network="blue", flavor=NET_FLAVOR["name"], probe_image="rtkvm-probe",
        server_address="10.78.0.1/24", client_address="10.78.0.2/24", seconds=15, mps=1000,
        names=("demo-rtt-server", "demo-rtt-client"), during=inspect,
        warnings=("TCG emulation on a 2-CPU VM, PMD shared with the RT vCPU: not an RT figure",),
    )  # fmt: skip
    (OUT / "rtt-blue.json").write_text(dumps(report))
    (OUT / "rtt-blue.txt").write_text(render(report) + "\n")
    check(report.samples >= 10_000 and not report.unresolved,
          f"{report.samples} round trips read back through Nova's console, every percentile "
          f"to p99.99 resolved, max {report.max_us:.0f} us (TCG)")  # fmt: skip
    check(
        len(served["ports_polled"]) == 2,
        f"both servers' vhost-user ports polled by rtkvm's PMD: {served['ports_polled']}",
    )
    check(served["memaccess_shared"], "both servers' memory shared, on hugepages")
    outside = ping_from(s, name="demo-blue-out", network="blue", flavor=NET_FLAVOR["name"],
                        probe_image="rtkvm-probe", address="10.78.0.3/24",
                        target=PEERS["blue"][2].split("/")[0])  # fmt: skip
    check(outside.answered, "a server on blue is answered by blue's outside peer (polled uplink)")
    red = ping_from(s, name="demo-red", network="red", flavor=NET_FLAVOR["name"],
                    probe_image="rtkvm-probe", address="10.78.0.5/24",
                    reach_first=PEERS["red"][2].split("/")[0],
                    target=PEERS["blue"][2].split("/")[0])  # fmt: skip
    check(not red.answered, "a server on red reaches red's peer and gets no reply from blue's")
    green = ping_from(s, name="demo-green", network="green", flavor=NET_FLAVOR["name"],
                      probe_image="rtkvm-probe", address="10.78.1.5/24",
                      target=PEERS["green"][2].split("/")[0])  # fmt: skip
    check(green.answered, f"a server on green (VLAN {VLANS['green']}) is answered by green's "
          "peer, which answers tagged frames only: tagged on the uplink")  # fmt: skip
    status = subprocess.run([RTKVM, "net", "status", "--rundir", str(SWITCH), "-f", "json"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    (OUT / "net-status.json").write_text(status.stdout)
    check(status.returncode == 0, "the switch's threads in place after Nova's ports came and "
          "went (PMD FIFO with reset-on-fork, others on housekeeping)")  # fmt: skip
    summary["neutron"] = {
        "rtt": {"samples": report.samples, "p50_us": report.percentiles.get(50.0),
                "p99_us": report.percentiles.get(99.0),
                "p99_99_us": report.percentiles.get(99.99), "max_us": report.max_us,
                "unresolved": list(report.unresolved)},
        "ports_polled": served["ports_polled"],
        "wiring_check": wiring["verdict"],
        "outside_peer_answered": outside.answered,
        "red_reached_blue": red.answered,
        "vlan_peer_answered": green.answered,
        "provider": {n: list(k) for n, k in kinds.items()},
    }  # fmt: skip


def instance_name(s: CloudSession, server_id: str) -> str:
    server = s.call("compute", "GET", f"/servers/{server_id}", microversion="2.86")["server"]
    return str(server["OS-EXT-SRV-ATTR:instance_name"])


def hugepages_now() -> tuple[str, bool]:
    pages = Path("/proc/sys/vm/nr_hugepages").read_text().strip()
    mounted = any(
        f.split()[2:3] == ["hugetlbfs"] for f in Path("/proc/mounts").read_text().splitlines()
    )
    return pages, mounted


def teardown(summary: dict[str, Any]) -> list[str]:
    problems = []
    if summary.pop("_rtkvm_api", False):
        done = subprocess.run([RTKVM, "down", "--purge", "--state-dir", str(API_DIR)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        (OUT / "rtkvm-down.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            problems.append(f"rtkvm down --purge failed: {done.stderr.strip()[-300:]}")
    if LAYOUT.clouds_yaml.is_file():
        try:
            s = CloudSession(ENV["OS_CLOUD"], LAYOUT.clouds_yaml)
            for server in s.call("compute", "GET", "/servers")["servers"]:
                delete(s, server["id"])
        except Exception as exc:  # the stack may be down already: down --purge still runs
            problems.append(f"deleting servers: {exc}")
    done = subprocess.run([RTKVM, "openstack", "down", "--purge"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    (OUT / "down.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        problems.append(f"rtkvm openstack down --purge failed: {done.stderr.strip()[-300:]}")
    if summary.pop("_switch", False):
        done = subprocess.run([RTKVM, "net", "down", "--rundir", str(SWITCH)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        (OUT / "net-down.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            problems.append(f"rtkvm net down failed: {done.stderr.strip()[-300:]}")
    for net in summary.pop("_peers", []):
        ns, uplink, _ = PEERS[net]
        done = subprocess.run([RTKVM, "net", "peer", "delete", ns, "--uplink", uplink],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            problems.append(f"peer {ns} not removed: {done.stderr.strip()[-300:]}")
    left = subprocess.run(["pgrep", "-f", str(LAYOUT.root)], capture_output=True, text=True,
                          check=False).stdout.split()  # fmt: skip
    if left:
        problems.append(f"processes of the stack left: {left}")
    if LAYOUT.root.exists():
        problems.append(f"{LAYOUT.root} left behind")
    if API_DIR.exists():
        problems.append(f"{API_DIR} (rtkvm's API) left behind")
    if hugepages_now() != summary["hugepages_before"]:
        problems.append(
            f"hugepages (count, hugetlbfs mounted) {hugepages_now()} after, "
            f"{summary['hugepages_before']} before"
        )
    summary["teardown"] = {"problems": problems, "left_processes": left}
    return problems


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in ("summary.txt", "summary.json"):
        (OUT / stale).unlink(missing_ok=True)
    summary: dict[str, Any] = {"servers": [], "refused": [], "hugepages_before": hugepages_now()}
    began = time.monotonic()
    failure = None
    try:
        demo(summary)
    except (DemoError, Exception) as exc:  # every failure ends the demo, loudly, after teardown
        failure = f"{type(exc).__name__}: {exc}" if not isinstance(exc, DemoError) else str(exc)
    say("teardown")
    problems = teardown(summary)
    if failure or problems:
        said = [failure] if failure else []
        said += [f"teardown: {p}" for p in problems]
        print(f"openstack demo FAILED: {'; '.join(said)}", file=sys.stderr)
        return 1
    summary["seconds"] = round(time.monotonic() - began, 1)
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [f"rtkvm OpenStack demo on {socket.gethostname()} ({summary['seconds']} s)"]
    if summary.get("rt_waiver"):
        lines.append(f"WARNING: RT WAIVER ({summary['rt_waiver']}): RT guarantees were OFF")
    for warning in summary["up"]["warnings"]:
        lines.append(f"WARNING: {warning}")
    lines.append(f"traits published: {', '.join(summary['traits'])}")
    h = summary["rtkvm_api_host"]
    lines.append(f"rtkvm's API: this host {h['status']}, engine {h['engine']}, doctor "
                 f"{h['doctor_verdict']}; rtkvm never schedules there")  # fmt: skip
    for srv in summary["servers"]:
        o = srv["observed"]
        v = o["rt_vcpus"][0]
        c = srv["cyclictest"]
        lines.append(
            f"{srv['name']} ({srv['flavor']}) on {srv['host']}: RT vCPU {v['policy']}/"
            f"{v['priority']} on CPU {v['cpus']} (Nova rendered {o['nova_rendered_priority']}), "
            f"emulator on {o['emulator_cpus']}; cyclictest {c['samples']} samples, max "
            f"{c['max_us']} us under {c['accel']}; rtkvm: {srv['rtkvm_verdict']}"
        )
        api = srv["rtkvm_api"]
        lines.append(f"  in rtkvm's API: {api['verdict']}, measurement {api['measurement']}")
        if srv["restarted"]:
            r = srv["restarted"]
            lines.append(
                f"  hard reboot through Nova: QEMU {r['qemu_pid_before']} -> "
                f"{r['qemu_pid_after']}, RT vCPU {r['rt_vcpus'][0]['policy']}/"
                f"{r['rt_vcpus'][0]['priority']} again after {r['seconds']} s"
            )
    for r in summary["refused"]:
        lines.append(f"{r['name']} ({r['why']}): {r['fault']}")
    n = summary["neutron"]
    lines.append(
        f"Neutron on rtkvm's OVS-DPDK: round trip on blue between two Nova servers, "
        f"{n['rtt']['samples']} samples, p50 {n['rtt']['p50_us']} us, p99 {n['rtt']['p99_us']} "
        f"us, p99.99 {n['rtt']['p99_99_us']} us, max {n['rtt']['max_us']} us (TCG: not an RT "
        f"figure); ports on the PMD "
        f"{', '.join(n['ports_polled'])}; blue's outside peer answered; red did not reach blue; "
        f"green's peer answered on VLAN {n['provider']['green'][1]}"
    )
    lines.append("teardown: nothing left")
    lines.append(f"report: {OUT / 'report' / 'report.txt'}")
    (OUT / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
