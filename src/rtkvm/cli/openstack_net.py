"""`rtkvm openstack network sync` and `rtkvm openstack server create | delete`.

``network sync`` makes rtkvm's networks file (the one ``rtkvm net up`` and the
node agents read) Neutron's provider networks. ``server create NAME --network
blue`` boots a Nova server on rtkvm's networks in one step (unaddressed ports
made first, deleted with the server). Thin: the work is in
:mod:`rtkvm.openstack.networks` and :mod:`rtkvm.openstack.servers`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from rtkvm.cli.common import read_text
from rtkvm.cli.openstack_flavor import cloud_options
from rtkvm.net.model import load_networks
from rtkvm.openstack.networks import sync_networks
from rtkvm.openstack.servers import create_server, delete_server
from rtkvm.openstack.session import CloudSession

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
