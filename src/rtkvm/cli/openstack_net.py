"""`rtkvm openstack network sync | check | rtt | ping`, `rtkvm openstack server create | delete`.

``network sync`` makes rtkvm's networks file (the one ``rtkvm net up`` and the
node agents read) Neutron's provider networks. ``network check`` says whether
the host's wiring, rtkvm's switch and Neutron's OVS agent agree
(:mod:`rtkvm.openstack.wiringcheck`). ``server create NAME --network
blue`` boots a Nova server on rtkvm's networks in one step (unaddressed ports
made first, deleted with the server). ``network rtt`` and ``network ping`` boot
rtkvm's probe on a network through Nova for a round trip or a reachability
check (:mod:`rtkvm.openstack.netprobe`). Thin: the work is in
:mod:`rtkvm.openstack.networks` and :mod:`rtkvm.openstack.servers`.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import click

from rtkvm.cli.common import read_text
from rtkvm.cli.openstack_flavor import cloud_options
from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.settings import load_settings
from rtkvm.findings import Report
from rtkvm.footprint import SWITCH_RUNDIR
from rtkvm.hostfs import HostFS
from rtkvm.net.model import load_networks, load_wiring
from rtkvm.net.rtt import render
from rtkvm.openstack.netprobe import ping_from, round_trip
from rtkvm.openstack.networks import sync_networks
from rtkvm.openstack.neutronwiring import running_wiring
from rtkvm.openstack.servers import create_server, delete_server
from rtkvm.openstack.session import CloudSession
from rtkvm.openstack.wiringcheck import check_wiring, ovs_agent
from rtkvm.serialize import dumps

FORMAT = click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")


def network_commands(group: click.Group) -> None:
    @group.group("network")
    def network() -> None:
        """rtkvm's unmanaged L2 networks in Neutron."""

    @network.command("sync")
    @click.argument("networks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--prune", is_flag=True, help="Delete rtkvm's networks the file no longer has.")
    @cloud_options
    @FORMAT
    def sync(
        networks_file: Path, prune: bool, os_cloud: str, os_config_file: Path | None, fmt: str
    ) -> None:
        """Each network of the file as a Neutron provider network: flat or VLAN on its
        physical network, shared, no subnet, port security off."""
        nets = load_networks(read_text(networks_file, "networks file"), source=str(networks_file))
        done = sync_networks(CloudSession(os_cloud, os_config_file), nets, prune=prune)
        if fmt == "json":
            rows = [{"name": d.name, "id": d.network_id, "action": d.action} for d in done]
            click.echo(json.dumps(rows, indent=2))
            return
        for d in done:
            click.echo(f"{d.name}: {d.action} ({d.network_id})")

    @network.command("check")
    @click.option(
        "--wiring",
        "wiring_file",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The host's wiring file, the one its node agent publishes traits from.",
    )
    @click.option(
        "--switch-rundir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(SWITCH_RUNDIR.path),
        show_default=True,
        help="Run directory of `rtkvm net up` on this host.",
    )
    @click.option("--host", default=None, help="The host's name in Neutron [hostname].")
    @cloud_options
    @FORMAT
    def check(
        wiring_file: Path, switch_rundir: Path, host: str | None, os_cloud: str,
        os_config_file: Path | None, fmt: str,
    ) -> None:  # fmt: skip
        """Do the host's wiring, rtkvm's switch and Neutron's OVS agent agree? Exit 1 if not.

        A physical network in the wiring (so in the host's traits) must have a bridge in
        the switch, and the agent's bridge_mappings, datapath and vhost-user directory must
        be the switch's; each disagreement is a finding with its fix."""
        name = host or socket.gethostname()
        wiring = load_wiring(read_text(wiring_file, "wiring file"), source=str(wiring_file))
        switch = running_wiring(OvsDpdk(load_settings(), switch_rundir, HostFS("/")))
        agent = ovs_agent(CloudSession(os_cloud, os_config_file), name) if switch else None
        report = Report(
            f"wiring of {name}: {wiring_file}, {switch_rundir}, Neutron",
            tuple(check_wiring(wiring, switch, agent, name)),
            ok_verdict="agree", bad_verdict="disagree",
        )  # fmt: skip
        click.echo(report.to_json() if fmt == "json" else report.render_table(verbose=True))
        raise SystemExit(report.exit_code())

    @network.command("rtt")
    @click.argument("network_name", metavar="NETWORK")
    @click.option("--flavor", required=True, help="Nova flavor of the two probe servers.")
    @click.option("--server-address", required=True, help="ADDR/PREFIX of the sockperf server.")
    @click.option("--client-address", required=True, help="ADDR/PREFIX of the client.")
    @click.option("--image", default="rtkvm-probe", show_default=True, help="The probe image.")
    @click.option(
        "--seconds", type=click.IntRange(1, 3600), default=11, show_default=True,
        help="How long sockperf runs (its first 0.4 s are warm-up, not counted); 11 s at "
        "1000/s gives ~10,600 samples where the path keeps up, enough for p99.99 (10,000). "
        "A slower path answers fewer: under TCG ask for 15 s.",
    )  # fmt: skip
    @click.option("--mps", type=click.IntRange(1, 100000), default=1000, show_default=True)
    @click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None)
    @click.option("--timeout", type=float, default=300.0, show_default=True)
    @click.option(
        "--apart", is_flag=True,
        help="Boot the client on another host than the server (Nova's different_host hint): "
        "a round trip across hosts, through their uplinks.",
    )  # fmt: skip
    @cloud_options
    @FORMAT
    def rtt(
        network_name: str, flavor: str, server_address: str, client_address: str, image: str,
        seconds: int, mps: int, save: Path | None, timeout: float, apart: bool, os_cloud: str,
        os_config_file: Path | None, fmt: str,
    ) -> None:  # fmt: skip
        """Round trip between two probe servers Nova boots on NETWORK (sockperf ping-pong
        through Neutron's ports and rtkvm's switch); both are deleted afterwards. The path
        names the host of each."""
        report = round_trip(
            CloudSession(os_cloud, os_config_file), network=network_name, flavor=flavor,
            probe_image=image, server_address=server_address, client_address=client_address,
            seconds=seconds, mps=mps, timeout=timeout, apart=apart,
        )  # fmt: skip
        text = dumps(report)
        if save is not None:
            save.write_text(text + "\n", "utf-8")
        click.echo(text if fmt == "json" else render(report))

    @network.command("ping")
    @click.argument("network_name", metavar="NETWORK")
    @click.option("--flavor", required=True)
    @click.option("--address", required=True, help="ADDR/PREFIX of the probe on NETWORK.")
    @click.option("--target", required=True, help="The address to ping.")
    @click.option("--reach-first", default=None, help="An address that must answer first.")
    @click.option("--image", default="rtkvm-probe", show_default=True)
    @click.option("--timeout", type=float, default=300.0, show_default=True)
    @cloud_options
    def ping(
        network_name: str, flavor: str, address: str, target: str, reach_first: str | None,
        image: str, timeout: float, os_cloud: str, os_config_file: Path | None,
    ) -> None:  # fmt: skip
        """Boot a probe server on NETWORK that pings TARGET; exit 1 when nothing answered.

        With --reach-first the probe must reach that address first (so an unanswered
        target means isolation, not a dead NIC)."""
        done = ping_from(
            CloudSession(os_cloud, os_config_file), name="rtkvm-ping", network=network_name,
            flavor=flavor, probe_image=image, address=address, target=target,
            reach_first=reach_first, timeout=timeout,
        )  # fmt: skip
        click.echo(done.output)
        said = "answered" if done.answered else "did not answer"
        click.echo(f"{target} {said} a probe on {network_name} ({address})")
        raise SystemExit(0 if done.answered else 1)

    @group.group("server")
    def server() -> None:
        """Nova servers on rtkvm's networks."""

    @server.command("create")
    @click.argument("name")
    @click.option("--flavor", required=True)
    @click.option("--image", required=True)
    @click.option("--network", "networks", multiple=True, help="rtkvm's network (repeatable).")
    @click.option("--timeout", type=float, default=600.0, show_default=True)
    @cloud_options
    @FORMAT
    def create(
        name: str,
        flavor: str,
        image: str,
        networks: tuple[str, ...],
        timeout: float,
        os_cloud: str,
        os_config_file: Path | None,
        fmt: str,
    ) -> None:
        """Boot NAME with one unaddressed port per --network; wait until it is ACTIVE."""
        made = create_server(
            CloudSession(os_cloud, os_config_file),
            name,
            flavor=flavor,
            image=image,
            networks=list(networks),
            timeout=timeout,
        )
        if fmt == "json":
            doc = {
                "id": made.server_id,
                "name": made.name,
                "status": made.status,
                "host": made.host,
                "seconds": made.seconds,
                "ports": [{"network": n, "id": p, "mac": m} for n, p, m in made.ports],
            }
            click.echo(json.dumps(doc, indent=2))
            return
        click.echo(
            f"{made.name}: {made.status} on {made.host} in {made.seconds:g} s ({made.server_id})"
        )
        for net, port, mac in made.ports:
            click.echo(f"  {net}: port {port}, MAC {mac}, no IP")

    @server.command("delete")
    @click.argument("name_or_id")
    @click.option("--timeout", type=float, default=300.0, show_default=True)
    @cloud_options
    def delete(name_or_id: str, timeout: float, os_cloud: str, os_config_file: Path | None) -> None:
        """Delete the server and the ports rtkvm made for it."""
        ports = delete_server(CloudSession(os_cloud, os_config_file), name_or_id, timeout=timeout)
        click.echo(f"{name_or_id}: deleted, with {len(ports)} port(s)")
