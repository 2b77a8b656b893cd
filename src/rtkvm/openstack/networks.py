"""rtkvm's unmanaged L2 networks as Neutron provider networks; unaddressed ports for servers.

:func:`sync_networks` makes each network of rtkvm's networks file a Neutron
provider network: flat (untagged) or VLAN on its physical network, shared,
no subnet (no IP, no DHCP) and port security off. It leaves a matching one
alone, refuses to touch a network rtkvm did not make, and says what to do
when one of rtkvm's has other provider attributes (Neutron cannot change
them in place). :func:`make_port` creates a port with no fixed IP (Neutron
marks it ``ip_allocation: none``, which is what lets Nova boot with it on a
network without a subnet); :func:`server_ports` finds the ones rtkvm made for
a server. What rtkvm made is recognised by its description. This module must
not create or delete servers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rtkvm.errors import InputError, OpenStackError
from rtkvm.net.model import UnmanagedNetwork
from rtkvm.openstack.session import RestAPI

NETWORK_DESCRIPTION = "rtkvm unmanaged L2 network (no IP, no DHCP)"
PORT_DESCRIPTION = "rtkvm: unaddressed port of server {server}"


@dataclass(frozen=True)
class SyncedNetwork:
    name: str
    network_id: str
    action: str
    """created, unchanged or deleted."""


def provider_attributes(net: UnmanagedNetwork) -> dict[str, Any]:
    if net.vlan is None:
        return {"provider:network_type": "flat", "provider:physical_network": net.physnet}
    return {
        "provider:network_type": "vlan",
        "provider:physical_network": net.physnet,
        "provider:segmentation_id": net.vlan,
    }


def _differences(have: dict[str, Any], want: dict[str, Any]) -> list[str]:
    out = [f"{k} is {have.get(k)!r}, not {v!r}" for k, v in want.items() if have.get(k) != v]
    if have.get("port_security_enabled") is not False:
        out.append("port security is on")
    if have.get("subnets"):
        out.append(f"it has subnets {', '.join(have['subnets'])}")
    return out


def ours(network: dict[str, Any]) -> bool:
    return network.get("description") == NETWORK_DESCRIPTION


def list_networks(api: RestAPI) -> list[dict[str, Any]]:
    found = api.call("network", "GET", "/v2.0/networks", what="list Neutron's networks")
    return list(found["networks"])


def sync_networks(
    api: RestAPI, networks: Iterable[UnmanagedNetwork], *, prune: bool = False
) -> list[SyncedNetwork]:
    """Make Neutron hold exactly these provider networks (``prune``: delete rtkvm's others).

    Raises InputError naming every network it could not make right, after doing the rest."""
    wanted = {n.name: n for n in networks}
    existing = list_networks(api)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for net in existing:
        by_name.setdefault(net["name"], []).append(net)
    done: list[SyncedNetwork] = []
    problems: list[str] = []
    for name, asked in sorted(wanted.items()):
        want = provider_attributes(asked)
        same = by_name.get(name, [])
        foreign = [n for n in same if not ours(n)]
        mine = [n for n in same if ours(n)]
        if foreign:
            problems.append(
                f"{name}: Neutron already has a network of that name that rtkvm did not make "
                f"({foreign[0]['id']}); rename one of them"
            )
            continue
        if mine:
            diff = _differences(mine[0], want)
            if diff:
                problems.append(
                    f"{name}: Neutron's network {mine[0]['id']} differs ({'; '.join(diff)}) and "
                    "Neutron cannot change provider attributes in place: delete it once no "
                    "server uses it (sync --prune after removing it from the file), then sync"
                )
            else:
                done.append(SyncedNetwork(name, mine[0]["id"], "unchanged"))
            continue
        body = {
            "name": name,
            "description": NETWORK_DESCRIPTION,
            "shared": True,
            "port_security_enabled": False,
            "admin_state_up": True,
            **want,
        }
        try:
            made = api.call(
                "network", "POST", "/v2.0/networks", json={"network": body}, ok=(201,),
                what=f"create network {name}",
            )["network"]  # fmt: skip
        except OpenStackError as exc:
            problems.append(f"{name}: {exc}")
            continue
        done.append(SyncedNetwork(name, made["id"], "created"))
    if prune:
        for net in existing:
            if ours(net) and net["name"] not in wanted:
                try:
                    api.call(
                        "network", "DELETE", f"/v2.0/networks/{net['id']}", ok=(204,),
                        what=f"delete network {net['name']}",
                    )  # fmt: skip
                except OpenStackError as exc:
                    problems.append(f"{net['name']}: not deleted ({exc}); delete its ports first")
                    continue
                done.append(SyncedNetwork(net["name"], net["id"], "deleted"))
    if problems:
        raise InputError("; ".join(problems))
    return done


def network_by_name(api: RestAPI, name: str) -> dict[str, Any]:
    """One of rtkvm's networks in Neutron, by name; InputError when there is none."""
    found = [n for n in list_networks(api) if n["name"] == name and ours(n)]
    if not found:
        raise InputError(
            f"Neutron has no rtkvm network {name!r}: add it to the networks file and run "
            "`rtkvm openstack network sync`"
        )
    return found[0]


def make_port(api: RestAPI, network: dict[str, Any], server: str) -> dict[str, Any]:
    """A port with no fixed IP (``ip_allocation: none``) and no port security."""
    body = {
        "network_id": network["id"],
        "name": f"{server}-{network['name']}",
        "description": PORT_DESCRIPTION.format(server=server),
        "fixed_ips": [],
        "port_security_enabled": False,
    }
    port: dict[str, Any] = api.call(
        "network", "POST", "/v2.0/ports", json={"port": body}, ok=(201,),
        what=f"create a port on {network['name']} for {server}",
    )["port"]  # fmt: skip
    if port.get("ip_allocation") != "none":
        delete_port(api, port["id"])
        raise OpenStackError(
            f"Neutron made port {port['id']} with ip_allocation {port.get('ip_allocation')!r}, "
            "not 'none': Nova would refuse it (PortRequiresFixedIP); Neutron needs the "
            "'segments' service plugin (service_plugins = segments)"
        )
    return port


def server_ports(api: RestAPI, server: str) -> list[dict[str, Any]]:
    """The ports rtkvm made for the server named ``server`` (bound or not)."""
    found = api.call("network", "GET", "/v2.0/ports", what="list Neutron's ports")["ports"]
    mark = PORT_DESCRIPTION.format(server=server)
    return [p for p in found if p.get("description") == mark]


def delete_port(api: RestAPI, port_id: str) -> None:
    try:
        api.call("network", "DELETE", f"/v2.0/ports/{port_id}", ok=(204,), what="delete a port")
    except OpenStackError as exc:
        if exc.status != 404:
            raise
