"""A Nova server on rtkvm's networks in one step: unaddressed ports made, booted, cleaned up.

Nova refuses ``--nic net-id=`` on a network without a subnet
(``NetworkRequiresSubnet``); the way through is a port made beforehand with
no fixed IP. :func:`create_server` makes one such port per network asked for
(:mod:`rtkvm.openstack.networks`), boots the server with them and waits until
it is ACTIVE; when the boot fails it deletes the server and the ports and
says Nova's fault. :func:`delete_server` deletes the server, waits until Nova
has let go of it, then deletes the ports rtkvm made for it (Nova keeps
ports it did not create). This module must not change networks or flavors.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rtkvm.errors import InputError, OpenStackError
from rtkvm.openstack.networks import delete_port, make_port, network_by_name, server_ports
from rtkvm.openstack.session import RestAPI

MICROVERSION = "2.86"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")


@dataclass(frozen=True)
class MadeServer:
    server_id: str
    name: str
    status: str
    host: str
    ports: tuple[tuple[str, str, str], ...]
    """(network, port id, MAC address) per NIC, in the order asked for."""
    seconds: float


def servers_named(api: RestAPI, name: str) -> list[dict[str, Any]]:
    """Nova's servers (of every project) named exactly ``name``."""
    found = api.call(
        "compute", "GET", f"/servers/detail?name=^{name}$&all_tenants=1",
        microversion=MICROVERSION, what=f"look for server {name}",
    )["servers"]  # fmt: skip
    return [s for s in found if s["name"] == name]


def _flavor_id(api: RestAPI, flavor: str) -> str:
    found = api.call("compute", "GET", "/flavors/detail?is_public=None", microversion=MICROVERSION)
    for f in found["flavors"]:
        if flavor in (f["id"], f["name"]):
            return str(f["id"])
    raise InputError(f"Nova has no flavor {flavor!r}: `rtkvm openstack flavor sync` makes them")


def _image_id(api: RestAPI, image: str) -> str:
    found = api.call("image", "GET", "/v2/images?limit=1000", what="list Glance's images")
    for i in found["images"]:
        if image in (i["id"], i["name"]):
            return str(i["id"])
    raise InputError(f"Glance has no image {image!r}")


def create_server(
    api: RestAPI,
    name: str,
    *,
    flavor: str,
    image: str,
    networks: Sequence[str],
    timeout: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
    apart_from: Sequence[str] = (),
) -> MadeServer:
    """Boot ``name`` on rtkvm's ``networks`` (unaddressed ports made for it) and wait for
    ACTIVE; ``apart_from``: server ids it must not share a host with (Nova's
    ``different_host`` hint, DifferentHostFilter in rtkvm's nova.conf)."""
    if not _NAME.match(name):
        raise InputError(
            f"server name {name!r}: use 1 to 63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if not networks:
        raise InputError("give at least one --network (rtkvm's networks in Neutron)")
    if len(set(networks)) != len(networks):
        raise InputError(f"a network is given twice in {', '.join(networks)}: give each once")
    if servers_named(api, name):
        raise InputError(f"Nova already has a server named {name!r}: choose another name")
    flavor_id, image_id = _flavor_id(api, flavor), _image_id(api, image)
    nets = [network_by_name(api, n) for n in networks]
    began = time.monotonic()
    ports: list[dict[str, Any]] = []
    try:
        for net in nets:
            ports.append(make_port(api, net, name))
        body: dict[str, Any] = {
            "server": {
                "name": name,
                "flavorRef": flavor_id,
                "imageRef": image_id,
                "networks": [{"port": p["id"]} for p in ports],
            }
        }
        if apart_from:
            body["os:scheduler_hints"] = {"different_host": list(apart_from)}
        sid = api.call(
            "compute", "POST", "/servers", json=body, microversion=MICROVERSION, ok=(202,),
            what=f"create server {name}",
        )["server"]["id"]  # fmt: skip
    except Exception:
        for port in ports:
            delete_port(api, port["id"])
        raise
    server = _settle(api, sid, name, timeout, sleep)
    if server["status"] != "ACTIVE":
        fault = (server.get("fault") or {}).get("message", "no fault given")
        delete_server(api, sid, timeout=timeout, sleep=sleep)
        raise OpenStackError(
            f"server {name} went to {server['status']} ({fault}); it and its ports are deleted"
        )
    return MadeServer(
        sid,
        name,
        server["status"],
        server.get("OS-EXT-SRV-ATTR:host") or "",
        tuple((n["name"], p["id"], p["mac_address"]) for n, p in zip(nets, ports, strict=True)),
        round(time.monotonic() - began, 1),
    )


def _settle(
    api: RestAPI, sid: str, name: str, timeout: float, sleep: Callable[[float], None]
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        server: dict[str, Any] = api.call(
            "compute", "GET", f"/servers/{sid}", microversion=MICROVERSION, what="read the server"
        )["server"]
        settled = server["status"] in ("ACTIVE", "ERROR")
        if settled and not server.get("OS-EXT-STS:task_state"):
            return server
        if time.monotonic() > deadline:
            return {**server, "status": f"{server['status']} after {timeout:.0f} s"}
        sleep(1.0)


def delete_server(
    api: RestAPI,
    name_or_id: str,
    *,
    timeout: float = 300.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Delete the server and the ports rtkvm made for it; the ports' ids."""
    found = servers_named(api, name_or_id) if _NAME.match(name_or_id) else []
    if not found:
        try:
            one = api.call(
                "compute", "GET", f"/servers/{name_or_id}", microversion=MICROVERSION,
                ok=(200,), what=f"read server {name_or_id}",
            )["server"]  # fmt: skip
            found = [one]
        except OpenStackError as exc:
            if exc.status != 404:
                raise
    if len(found) > 1:
        raise InputError(f"{len(found)} servers are named {name_or_id!r}: give the server's id")
    name = found[0]["name"] if found else name_or_id
    if found:
        sid = found[0]["id"]
        api.call("compute", "DELETE", f"/servers/{sid}", ok=(204, 404), what=f"delete {name}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                api.call("compute", "GET", f"/servers/{sid}", ok=(200,), what="read the server")
            except OpenStackError as exc:
                if exc.status == 404:
                    break
                raise
            if time.monotonic() > deadline:
                raise OpenStackError(f"server {name} was not deleted within {timeout:.0f} s")
            sleep(1.0)
    ports = server_ports(api, name)
    if not found and not ports:
        raise InputError(f"Nova has no server {name_or_id!r} and rtkvm made no port for one")
    for port in ports:
        delete_port(api, port["id"])
    return [p["id"] for p in ports]
