"""Provider networks synced from rtkvm's networks file; servers booted on unaddressed ports."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from rtkvm.errors import InputError, OpenStackError
from rtkvm.net.model import UnmanagedNetwork
from rtkvm.openstack.networks import NETWORK_DESCRIPTION, sync_networks
from rtkvm.openstack.servers import create_server, delete_server


class FakeCloud:
    """Neutron's networks and ports, Nova's servers and flavors, Glance's images: as far as
    rtkvm's calls go, with Neutron's and Nova's answers (ip_allocation, PortRequiresFixedIP)."""

    def __init__(self, *, boot_status: str = "ACTIVE", ip_allocation: str = "none") -> None:
        self.networks: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, dict[str, Any]] = {}
        self.servers: dict[str, dict[str, Any]] = {}
        self.boot_status = boot_status
        self.ip_allocation = ip_allocation
        self.calls: list[tuple[str, str]] = []

    def call(self, service: str, method: str, path: str, **kw: Any) -> Any:
        self.calls.append((method, path))
        body = kw.get("json")
        if path.startswith("/v2.0/networks"):
            return self._networks(method, path, body)
        if path.startswith("/v2.0/ports"):
            return self._ports(method, path, body)
        if path.startswith("/flavors"):
            return {"flavors": [{"id": "f1", "name": "rt.small"}]}
        if path.startswith("/v2/images"):
            return {"images": [{"id": "i1", "name": "probe"}]}
        return self._servers(method, path, body)

    def _networks(self, method: str, path: str, body: Any) -> Any:
        if method == "GET":
            return {"networks": list(self.networks.values())}
        if method == "POST":
            net = {"id": str(uuid.uuid4()), "subnets": [], **body["network"]}
            self.networks[net["id"]] = net
            return {"network": net}
        nid = path.rsplit("/", 1)[1]
        if any(p["network_id"] == nid for p in self.ports.values()):
            raise OpenStackError("network answered 409: network in use", status=409)
        del self.networks[nid]
        return None

    def _ports(self, method: str, path: str, body: Any) -> Any:
        if method == "GET":
            return {"ports": list(self.ports.values())}
        if method == "POST":
            asked = body["port"]
            alloc = self.ip_allocation if asked.get("fixed_ips") == [] else "immediate"
            port = {"id": str(uuid.uuid4()), "mac_address": "fa:16:3e:00:00:01",
                    "device_id": "", "ip_allocation": alloc, **asked}  # fmt: skip
            self.ports[port["id"]] = port
            return {"port": port}
        pid = path.rsplit("/", 1)[1]
        if pid not in self.ports:
            raise OpenStackError("network answered 404", status=404)
        del self.ports[pid]
        return None

    def _servers(self, method: str, path: str, body: Any) -> Any:
        if method == "GET" and path.startswith("/servers/detail"):
            name = re.search(r"name=\^(.*)\$", path).group(1)  # type: ignore[union-attr]
            return {"servers": [s for s in self.servers.values() if s["name"] == name]}
        if method == "POST":
            for nic in body["server"]["networks"]:
                port = self.ports[nic["port"]]
                if port["ip_allocation"] != "none" and not port.get("fixed_ips"):
                    raise OpenStackError("compute answered 400: PortRequiresFixedIP", status=400)
            sid = str(uuid.uuid4())
            for nic in body["server"]["networks"]:
                self.ports[nic["port"]]["device_id"] = sid
            self.servers[sid] = {"id": sid, "name": body["server"]["name"],
                                 "status": self.boot_status, "OS-EXT-SRV-ATTR:host": "node1",
                                 "fault": {"message": "No valid host was found."}}  # fmt: skip
            return {"server": {"id": sid}}
        sid = path.split("/")[2]
        if sid not in self.servers:
            raise OpenStackError("compute answered 404", status=404)
        if method == "DELETE":
            del self.servers[sid]  # Nova keeps the ports it did not create (unbound)
            for port in self.ports.values():
                if port["device_id"] == sid:
                    port["device_id"] = ""
            return None
        return {"server": self.servers[sid]}


NETS = [UnmanagedNetwork("blue", "physblue", 10), UnmanagedNetwork("green", "physgreen")]


def test_sync_makes_flat_and_vlan_provider_networks_without_subnets_once() -> None:
    cloud = FakeCloud()
    done = sync_networks(cloud, NETS)
    assert [(d.name, d.action) for d in done] == [("blue", "created"), ("green", "created")]
    by_name = {n["name"]: n for n in cloud.networks.values()}
    assert by_name["blue"]["provider:network_type"] == "vlan"
    assert by_name["blue"]["provider:segmentation_id"] == 10
    assert by_name["green"]["provider:network_type"] == "flat"
    assert "provider:segmentation_id" not in by_name["green"]
    for net in by_name.values():
        assert net["port_security_enabled"] is False and net["shared"] is True
        assert net["subnets"] == []
    again = sync_networks(cloud, NETS)
    assert {d.action for d in again} == {"unchanged"} and len(cloud.networks) == 2


def test_sync_refuses_someone_else_s_network_and_a_changed_vlan_but_does_the_rest() -> None:
    cloud = FakeCloud()
    sync_networks(cloud, NETS[:1])
    cloud.networks["x"] = {"id": "x", "name": "green", "description": "", "subnets": []}
    with pytest.raises(InputError) as err:
        sync_networks(cloud, [UnmanagedNetwork("blue", "physblue", 11), *NETS[1:],
                              UnmanagedNetwork("red", "physblue", 20)])  # fmt: skip
    text = str(err.value)
    assert "green: Neutron already has a network of that name that rtkvm did not make" in text
    assert "blue:" in text and "provider:segmentation_id is 10, not 11" in text
    assert "red" in {n["name"] for n in cloud.networks.values()}  # the rest was done


def test_prune_deletes_only_rtkvm_s_networks_that_left_the_file() -> None:
    cloud = FakeCloud()
    sync_networks(cloud, NETS)
    cloud.networks["x"] = {"id": "x", "name": "other", "description": "theirs", "subnets": []}
    done = sync_networks(cloud, NETS[:1], prune=True)
    assert ("green", "deleted") in [(d.name, d.action) for d in done]
    assert {n["name"] for n in cloud.networks.values()} == {"blue", "other"}


def test_a_server_boots_on_unaddressed_ports_and_its_ports_go_with_it() -> None:
    cloud = FakeCloud()
    sync_networks(cloud, NETS)
    made = create_server(cloud, "rt-1", flavor="rt.small", image="probe",
                         networks=["blue", "green"], sleep=lambda _: None)  # fmt: skip
    assert made.status == "ACTIVE" and made.host == "node1"
    assert [n for n, _, _ in made.ports] == ["blue", "green"]
    for port in cloud.ports.values():
        assert port["fixed_ips"] == [] and port["ip_allocation"] == "none"
        assert port["port_security_enabled"] is False and port["device_id"] == made.server_id
    deleted = delete_server(cloud, "rt-1", sleep=lambda _: None)
    assert len(deleted) == 2 and not cloud.ports and not cloud.servers
    assert all(n["description"] == NETWORK_DESCRIPTION for n in cloud.networks.values())


def test_a_failed_boot_leaves_neither_server_nor_ports_and_says_nova_s_fault() -> None:
    cloud = FakeCloud(boot_status="ERROR")
    sync_networks(cloud, NETS)
    with pytest.raises(OpenStackError, match=r"ERROR .No valid host was found.*ports are deleted"):
        create_server(cloud, "rt-1", flavor="rt.small", image="probe", networks=["blue"],
                      sleep=lambda _: None)  # fmt: skip
    assert not cloud.ports and not cloud.servers


def test_without_neutron_s_ip_allocation_the_port_is_taken_back_with_the_fix() -> None:
    cloud = FakeCloud(ip_allocation="immediate")
    sync_networks(cloud, NETS)
    with pytest.raises(OpenStackError, match="segments"):
        create_server(cloud, "rt-1", flavor="rt.small", image="probe", networks=["blue"],
                      sleep=lambda _: None)  # fmt: skip
    assert not cloud.ports and not cloud.servers


@pytest.mark.parametrize(
    ("name", "networks", "why"),
    [
        ("rt-1", [], "at least one --network"),
        ("rt-1", ["blue", "blue"], "given twice"),
        ("rt-1", ["purple"], "no rtkvm network 'purple'.*network sync"),
        ("bad name$", ["blue"], "server name"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_made(
    name: str, networks: list[str], why: str
) -> None:
    cloud = FakeCloud()
    sync_networks(cloud, NETS)
    with pytest.raises(InputError, match=why):
        create_server(cloud, name, flavor="rt.small", image="probe", networks=networks)
    assert not cloud.ports and not cloud.servers


def test_a_name_nova_already_has_is_refused_and_an_unknown_server_is_an_error() -> None:
    cloud = FakeCloud()
    sync_networks(cloud, NETS)
    create_server(cloud, "rt-1", flavor="rt.small", image="probe", networks=["blue"],
                  sleep=lambda _: None)  # fmt: skip
    with pytest.raises(InputError, match="already has a server named 'rt-1'"):
        create_server(cloud, "rt-1", flavor="rt.small", image="probe", networks=["blue"])
    assert len(cloud.ports) == 1
    with pytest.raises(InputError, match="no server 'rt-9'"):
        delete_server(cloud, "rt-9", sleep=lambda _: None)
