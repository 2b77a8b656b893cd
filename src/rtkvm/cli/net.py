"""``rtkvm net ...``: the RT switch (OVS-DPDK) and unmanaged networks; thin over the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from rtkvm.cli.common import format_option, open_host, resolve_plan, root_option
from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.backend import OvsDpdkBackend
from rtkvm.dataplane.layout import GuestNic
from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.quirks import preflight
from rtkvm.dataplane.settings import load_settings
from rtkvm.dataplane.stack import (
    DEFAULT_RUNDIR,
    DEFAULT_SOCKET_DIR,
    host_layout,
    layout_to_dict,
    load_layout,
    save_layout,
)
from rtkvm.errors import InputError
from rtkvm.guest import lifecycle
from rtkvm.guest.netcmd import check_address
from rtkvm.guest.netrun import SOCKPERF_PORT, rtt_from_guest, serving
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.net.lldp import cross_check, read_neighbors
from rtkvm.net.model import (
    HostWiring,
    UnmanagedNetwork,
    availability,
    load_networks,
    load_wiring,
)
from rtkvm.net.netns import NetnsPeer
from rtkvm.net.pcinic import dpdk_nics
from rtkvm.net.rtt import DEFAULT_BUCKET_US, DEFAULT_MPS, DEFAULT_SECONDS, render
from rtkvm.net.rttrun import NetnsEndpoint, measure, ping_pong
from rtkvm.serialize import dumps

rundir_option = click.option(
    "--rundir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUNDIR,
    show_default=True,
    help="Directory of the rtkvm-owned switch (database, sockets, logs, state).",
)


def _layout_options(fn: Any) -> Any:
    options = [
        click.option("--plan", "plan_file", type=click.Path(exists=True, dir_okay=False),
                     help="Partition plan JSON (rtkvm host plan --format json)."),
        click.option("--housekeeping", help="Housekeeping CPUs, when no --plan is given."),
        click.option("--rt-vcpus", default="", help="RT vCPU CPUs, when no --plan is given."),
        click.option("--dataplane-cpus", help="PMD CPUs instead of the plan's dataplane set."),
        click.option("--share-with-rt-vcpus", is_flag=True,
                     help="Accept PMD CPUs that RT vCPUs also use (functional tests only)."),
        click.option("--networks", "networks_file", type=click.Path(exists=True, dir_okay=False),
                     help="TOML with [[network]] name, physnet, vlan."),
        click.option("--wiring", "wiring_file", type=click.Path(exists=True, dir_okay=False),
                     help="TOML with [[uplink]] physnet, interface (this host's wiring)."),
        click.option("--socket-dir", default=DEFAULT_SOCKET_DIR, show_default=True,
                     help="Directory rtkvm owns for the vhost-user sockets."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _inputs(
    networks_file: str | None, wiring_file: str | None
) -> tuple[tuple[UnmanagedNetwork, ...], HostWiring]:
    nets = (
        load_networks(Path(networks_file).read_text(), source=networks_file)
        if networks_file
        else ()
    )
    wiring = (
        load_wiring(Path(wiring_file).read_text(), source=wiring_file)
        if wiring_file
        else HostWiring()
    )
    return nets, wiring


def _compute(fs: HostFS, kw: dict[str, Any]) -> Any:
    nets, wiring = _inputs(kw["networks_file"], kw["wiring_file"])
    return host_layout(
        fs,
        load_settings(),
        resolve_plan(kw["plan_file"], kw["housekeeping"], kw["rt_vcpus"]),
        nets,
        wiring,
        socket_dir=kw["socket_dir"],
        dataplane_override=CpuSet.parse(kw["dataplane_cpus"]) if kw["dataplane_cpus"] else None,
        allow_shared_with_rt=kw["share_with_rt_vcpus"],
    )


@click.group()
def net() -> None:
    """The real-time switch (OVS-DPDK) and unmanaged L2 networks."""


@net.command("preflight")
@root_option
@format_option
def preflight_cmd(root: str, fmt: str) -> None:
    """Check that this host can run the RT switch (binaries, DPDK drivers, RT limits)."""
    report = preflight(open_host(root), load_settings())
    click.echo(report.to_json() if fmt == "json" else report.render_table(verbose=True))
    raise SystemExit(report.exit_code())


@net.command("plan")
@root_option
@_layout_options
@format_option
def plan_cmd(root: str, fmt: str, **kw: Any) -> None:
    """Show the switch configuration rtkvm would apply on this host."""
    result = _compute(open_host(root), kw)
    data = {"layout": layout_to_dict(result.layout), "availability": result.availability}
    if fmt == "json":
        click.echo(dumps(data))
        return
    lay = result.layout
    for warning in lay.cpus.warnings:
        click.echo(warning, err=True)
    click.echo(
        f"PMD CPUs {lay.cpus.pmd}, DPDK main lcore {lay.cpus.lcore}, "
        f"other threads on {lay.cpus.process}"
    )
    for key, value in lay.other_config.items():
        click.echo(f"  other_config:{key}={value}")
    click.echo(f"hugepages per NUMA node: {lay.hugepages}")
    for b in lay.bridges:
        trunk = f" trunks={','.join(map(str, b.uplink.trunks))}" if b.uplink.trunks else ""
        polled = (
            f"polled: port {b.uplink.port_name}, {b.uplink.reader} on {b.uplink.interface}"
            if b.uplink.devargs
            else f"kernel port {b.uplink.interface}, not polled"
        )
        click.echo(
            f"bridge {b.name} (netdev): uplink {b.uplink.interface} ({polled}){trunk}; "
            f"networks {', '.join(b.networks)}"
        )
    for name, why in result.availability.unavailable.items():
        click.echo(f"network {name} unavailable here: {why}")


@net.command("networks")
@root_option
@click.option(
    "--networks", "networks_file", type=click.Path(exists=True, dir_okay=False), required=True
)
@click.option(
    "--wiring", "wiring_file", type=click.Path(exists=True, dir_okay=False), required=True
)
@click.option("--lldp/--no-lldp", default=True, help="Ask lldpd (lldpctl) for neighbours.")
@format_option
def networks_cmd(root: str, networks_file: str, wiring_file: str, lldp: bool, fmt: str) -> None:
    """Which unmanaged networks this host can carry, cross-checked with the link."""
    fs = open_host(root)
    nets, wiring = _inputs(networks_file, wiring_file)
    names = fs.listdir_maybe("/sys/class/net")
    present = [] if isinstance(names, Unknown) else names
    present += dpdk_nics(fs, [u.interface for u in wiring.uplinks])  # NICs DPDK drives
    avail = availability(nets, wiring, present)
    neighbors = read_neighbors() if lldp else Unknown("lldpctl", "not asked (--no-lldp)")
    report = cross_check(fs, wiring, nets, neighbors)
    if fmt == "json":
        click.echo(
            json.dumps(
                {"availability": json.loads(dumps(avail)), "wiring": report.to_dict()}, indent=2
            )
        )
    else:
        click.echo("available: " + (", ".join(avail.available) or "none"))
        for name, why in avail.unavailable.items():
            click.echo(f"unavailable: {name}: {why}")
        click.echo(report.render_table())
    raise SystemExit(0 if avail.available or not nets else 1)


@net.command("up")
@_layout_options
@rundir_option
def up_cmd(rundir: Path, **kw: Any) -> None:
    """Start OVS-DPDK under rtkvm's control with this host's layout."""
    fs = HostFS("/", writable=True)
    result = _compute(fs, kw)
    for warning in result.layout.cpus.warnings:
        click.echo(warning, err=True)
    ovs = OvsDpdk(load_settings(), rundir, fs)
    save_layout(rundir, result.layout)
    info = ovs.start(result.layout)  # cleans up after itself when it fails
    click.echo(
        f"OVS-DPDK up in {info.seconds:.2f} s (IOVA {info.iova_mode}); bridges: "
        + ", ".join(b.name for b in result.layout.bridges)
    )
    polled = [
        f"{b.uplink.port_name} ({b.uplink.reader})"
        for b in result.layout.bridges
        if b.uplink.devargs
    ]
    if polled:
        click.echo(
            f"uplinks polled by the PMD threads: {', '.join(polled)}; "
            "`rtkvm net status` verifies their CPUs and priority"
        )


@net.command("plug")
@rundir_option
@click.option("--guest", required=True)
@click.option("--nic", type=int, default=0, show_default=True)
@click.option("--network", required=True)
def plug_cmd(rundir: Path, guest: str, nic: int, network: str) -> None:
    """Add a dpdkvhostuserclient port; prints the socket QEMU must serve (mode=server)."""
    backend = OvsDpdkBackend(
        OvsDpdk(load_settings(), rundir, HostFS("/", writable=True)), load_layout(rundir)
    )
    plugged = backend.plug(GuestNic(guest, nic, network))
    click.echo(f"{plugged.port} {plugged.socket} mode={plugged.mode}")


@net.command("unplug")
@rundir_option
@click.option("--guest", required=True)
@click.option("--nic", type=int, default=0, show_default=True)
@click.option("--network", required=True)
def unplug_cmd(rundir: Path, guest: str, nic: int, network: str) -> None:
    """Remove a guest NIC's port."""
    backend = OvsDpdkBackend(
        OvsDpdk(load_settings(), rundir, HostFS("/", writable=True)), load_layout(rundir)
    )
    backend.unplug(GuestNic(guest, nic, network))


@net.command("status")
@rundir_option
@format_option
def status_cmd(rundir: Path, fmt: str) -> None:
    """Verify PMD threads (CPUs, policy, priority) and the other threads' placement in /proc."""
    backend = OvsDpdkBackend(OvsDpdk(load_settings(), rundir, HostFS("/")), load_layout(rundir))
    report = backend.verify()
    click.echo(report.to_json() if fmt == "json" else report.render_table(verbose=True))
    raise SystemExit(report.exit_code())


@net.command("sweep")
@rundir_option
@format_option
def sweep_cmd(rundir: Path, fmt: str) -> None:
    """Put the switch's threads right again: PMDs at their priority with
    SCHED_RESET_ON_FORK, every other thread of ovs-vswitchd on housekeeping CPUs.

    Needed after something other than rtkvm changed the switch (Neutron's agent or
    os-vif adding ports); rtkvm's own plugs and the OpenStack node agent's rounds do it.
    """
    fs = HostFS("/")
    backend = OvsDpdkBackend(OvsDpdk(load_settings(), rundir, fs), load_layout(rundir))
    done = backend.sweep()
    doc = {
        "pmds": [{"tid": t.tid, "comm": t.comm} for t in done.pmds],
        "changed": [{"tid": t.tid, "comm": t.comm} for t in done.changed],
        "rehomed": [
            {"tid": t.tid, "comm": t.comm, "was": t.cpus_allowed.format()} for t in done.rehomed
        ],
    }
    if fmt == "json":
        click.echo(dumps(doc))
        return
    click.echo(
        f"{len(done.pmds)} PMD threads, {len(done.changed)} set, "
        f"{len(done.rehomed)} other threads sent to housekeeping"
    )
    for t in done.rehomed:
        click.echo(f"  {t.comm} (tid {t.tid}) was on CPUs {t.cpus_allowed.format()}")


@net.command("down")
@rundir_option
def down_cmd(rundir: Path) -> None:
    """Stop the switch, give hugepages back, unmount what rtkvm mounted."""
    errors = OvsDpdk(load_settings(), rundir, HostFS("/", writable=True)).stop()
    for error in errors:
        click.echo(f"rtkvm: {error}", err=True)
    raise SystemExit(1 if errors else 0)


@net.group("peer")
def peer_group() -> None:
    """A test peer outside the switch: a network namespace behind a veth uplink.

    On a host with no spare NIC for a network, the veth's host end is the uplink to
    name in the wiring file (physnet -> interface); the namespace is the far side of
    the wire, with an address, for ping and `rtkvm net rtt --server-netns`.
    """


@peer_group.command("add")
@click.argument("netns")
@click.option("--uplink", required=True, help="Host end of the veth (the wiring's interface).")
@click.option("--address", required=True, help="ADDR/PREFIX of the peer inside the namespace.")
@click.option("--vlan", type=click.IntRange(1, 4094), help="Tag the peer's traffic (a trunk).")
def peer_add_cmd(netns: str, uplink: str, address: str, vlan: int | None) -> None:
    """Create namespace NETNS and a veth pair whose host end is UPLINK."""
    check_address(address)
    peer = NetnsPeer.create(netns, uplink, address, vlan=vlan)
    click.echo(f"peer {peer.netns}: {peer.address} behind uplink {peer.host_if}")
    if peer.responder:
        click.echo(
            f"note: this kernel has no VLAN interfaces (CONFIG_VLAN_8021Q): rtkvm's user-space "
            f"tagged peer answers ARP and ping for {peer.ip} on VLAN {vlan}, nothing else "
            "(no sockperf against it)",
            err=True,
        )


@peer_group.command("delete")
@click.argument("netns")
@click.option("--uplink", required=True, help="Host end of the veth.")
def peer_delete_cmd(netns: str, uplink: str) -> None:
    """Remove the veth pair and the namespace (idempotent)."""
    errors = NetnsPeer(netns, uplink, "").delete()
    for error in errors:
        click.echo(f"rtkvm: {error}", err=True)
    raise SystemExit(1 if errors else 0)


@net.command("rtt")
@click.option("--client-netns", help="Namespace the sockperf client runs in.")
@click.option("--client-guest", help="Shut-off rtkvm guest the client runs in (booted for it).")
@click.option("--server-netns", help="Namespace the sockperf server runs in.")
@click.option("--server-guest", help="Shut-off rtkvm guest the server runs in (booted for it).")
@click.option("--server-ip", required=True, help="The server's address on the network.")
@click.option("--seconds", type=int, default=DEFAULT_SECONDS, show_default=True)
@click.option(
    "--mps", type=int, default=DEFAULT_MPS, show_default=True, help="Messages per second."
)
@click.option("--bucket-us", type=float, default=DEFAULT_BUCKET_US, show_default=True)
@click.option("--timeout", type=float, default=180.0, show_default=True,
              help="Seconds a guest may take to boot and reach the server.")  # fmt: skip
@click.option("--uri", default=lifecycle.DEFAULT_URI, show_default=True, help="libvirt URI.")
@format_option
def rtt_cmd(
    client_netns: str | None,
    client_guest: str | None,
    server_netns: str | None,
    server_guest: str | None,
    server_ip: str,
    seconds: int,
    mps: int,
    bucket_us: float,
    timeout: float,
    uri: str,
    fmt: str,
) -> None:
    """Round trip (sockperf ping-pong): min, percentiles to 99.99, max and the histogram.

    Client and server are each a network namespace or an RT guest created with a NIC and
    an address (rtkvm guest create --network NET --ip ADDR/PREFIX); guests must be shut
    off: they are booted for the run, stopped and restored afterwards.
    """
    if (client_netns is None) == (client_guest is None):
        raise InputError("give exactly one client: --client-netns NS or --client-guest NAME")
    if (server_netns is None) == (server_guest is None):
        raise InputError("give exactly one server: --server-netns NS or --server-guest NAME")
    opts: dict[str, Any] = {"seconds": seconds, "mps": mps, "bucket_us": bucket_us}
    if client_netns is not None and server_netns is not None:
        report = measure(
            NetnsEndpoint(client_netns), NetnsEndpoint(server_netns), server_ip, **opts
        )
    else:
        with lifecycle.connect(uri) as conn:
            if client_guest is not None:
                report = rtt_from_guest(
                    conn,
                    client_guest,
                    server_ip,
                    server_guest=server_guest,
                    server=NetnsEndpoint(server_netns) if server_netns is not None else None,
                    timeout=timeout,
                    **opts,
                )
            else:
                assert client_netns is not None and server_guest is not None
                with serving(conn, server_guest, server_ip, timeout=timeout):
                    report = ping_pong(
                        NetnsEndpoint(client_netns),
                        f"guest {server_guest}",
                        server_ip,
                        port=SOCKPERF_PORT,
                        **opts,
                    )
    click.echo(dumps(report) if fmt == "json" else render(report))
