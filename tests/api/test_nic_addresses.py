"""A NIC's address on an unmanaged network: given by its user, never invented.

Checked (IPv4 ADDR/PREFIX, a host of its subnet, first NIC only), one IP per live
instance and network, shown to users and to the host's agent, and used by a round
trip unless the request names other addresses.
"""

from __future__ import annotations

from typing import Any

import click
import pytest
from fastapi.testclient import TestClient

from rtkvm.api.testing import ADMIN_TOKEN, Cloud, expect
from rtkvm.cli.cloud import nic_option
from rtkvm.wire.schemas import NicRequest
from rtkvm.wire.user_client import CloudClient


def _setup(cloud: Cloud) -> tuple[TestClient, TestClient]:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.network("blue", "blue", shared=True)
    cloud.network("red", "red", shared=True)
    cloud.flavor("rt2", 2)
    cloud.flavor("huge", 64)
    agent = cloud.host("h1", physnets=("blue", "red"))
    return alice, agent


def _create(user: TestClient, name: str, *nics: Any, flavor: str = "rt2") -> Any:
    return user.post("/v1/instances", json={"name": name, "flavor": flavor, "networks": list(nics)})


def test_the_address_is_kept_normalised_and_reaches_the_agent(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    nic = {"network": "blue", "address": "192.0.2.10/255.255.255.0"}
    vm = expect(_create(alice, "a", nic, "red"), 201)
    assert [(n["name"], n["address"]) for n in vm["networks"]] == [
        ("blue", "192.0.2.10/24"),
        ("red", None),
    ]
    shown = expect(alice.get(f"/v1/instances/{vm['id']}"), 200)
    assert shown["networks"] == vm["networks"]
    [work] = expect(agent.get("/v1/agent/instances"), 200)
    assert work["networks"][0]["address"] == "192.0.2.10/24"
    plain = expect(_create(alice, "b", "blue"), 201)  # a bare name: a NIC without address
    assert plain["networks"][0]["address"] is None


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("192.0.2.10", "no prefix: give ADDR/PREFIX"),
        ("2001:db8::1/64", "not an IPv4"),
        ("192.0.2.0/24", "network or broadcast"),
        ("192.0.2.255/24", "network or broadcast"),
        ("224.0.0.1/24", "not a unicast host"),
        ("x" * 40 + "/24", "not an IPv4"),
    ],
)
def test_a_bad_address_says_what_to_give_and_creates_nothing(
    cloud: Cloud, address: str, words: str
) -> None:
    alice, _ = _setup(cloud)
    refused = _create(alice, "a", {"network": "blue", "address": address})
    assert refused.status_code == 422 and words in refused.json()["detail"], refused.text
    assert "network blue" in refused.json()["detail"]
    assert expect(alice.get("/v1/instances"), 200) == []


def test_only_the_first_nic_takes_an_address(cloud: Cloud) -> None:
    alice, _ = _setup(cloud)
    refused = _create(alice, "a", "blue", {"network": "red", "address": "192.0.2.10/24"})
    assert refused.status_code == 422 and "first NIC only" in refused.json()["detail"]


def test_one_ip_per_live_instance_and_network(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    first = expect(_create(alice, "a", {"network": "blue", "address": "192.0.2.10/24"}), 201)
    taken = _create(alice, "b", {"network": "blue", "address": "192.0.2.10/25"})  # same IP
    assert taken.status_code == 409, taken.text
    detail = taken.json()["detail"]
    assert "192.0.2.10 on network blue is held by instance a" in detail and first["id"] in detail
    # the same IP on another network is another address
    expect(_create(alice, "c", {"network": "red", "address": "192.0.2.10/24"}), 201)

    # a create refused before placement holds nothing: the user retries at once
    refused = _create(alice, "d", {"network": "blue", "address": "192.0.2.11/24"}, flavor="huge")
    assert refused.status_code == 409, refused.text
    expect(_create(alice, "d", {"network": "blue", "address": "192.0.2.11/24"}), 201)

    # deleted: free again
    expect(alice.delete(f"/v1/instances/{first['id']}"), 204)
    again = _create(alice, "b", {"network": "blue", "address": "192.0.2.10/24"})
    assert again.status_code == 409  # still deleting on its host: still held
    gone = {"state": "deleted"}
    expect(agent.post(f"/v1/agent/instances/{first['id']}/state", json=gone), 200)
    expect(_create(alice, "b", {"network": "blue", "address": "192.0.2.10/24"}), 201)


def _active(user: TestClient, agent: TestClient, name: str, *nics: Any) -> Any:
    vm = expect(_create(user, name, *nics), 201)
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "active"}), 200)
    return vm


def test_a_round_trip_runs_on_the_addresses_the_users_gave(cloud: Cloud) -> None:
    alice, agent = _setup(cloud)
    _active(alice, agent, "a", {"network": "blue", "address": "192.0.2.10/24"})
    _active(alice, agent, "b", {"network": "blue", "address": "192.0.2.11/24"})
    m = expect(
        alice.post("/v1/measurements", json={"kind": "rtt", "server": "a", "peer": "b"}), 201
    )
    params = m["params"]
    assert (params["client_address"], params["server_address"]) == (
        "192.0.2.10/24",
        "192.0.2.11/24",
    )
    expect(alice.delete(f"/v1/measurements/{m['id']}"), 204)

    # the request's own addresses win
    body = {
        "kind": "rtt",
        "server": "a",
        "peer": "b",
        "rtt": {"client_address": "10.9.0.1/24", "server_address": "10.9.0.2/24"},
    }
    m = expect(alice.post("/v1/measurements", json=body), 201)
    assert m["params"]["client_address"] == "10.9.0.1/24"
    expect(alice.delete(f"/v1/measurements/{m['id']}"), 204)

    # one address of a user's beside a default of another subnet: said, with the why
    _active(alice, agent, "c", "blue")
    refused = alice.post("/v1/measurements", json={"kind": "rtt", "server": "a", "peer": "c"})
    assert refused.status_code == 422
    assert "different subnets" in refused.json()["detail"]
    assert "own address counts" in refused.json()["detail"]


def test_the_cli_option_and_the_client(cloud: Cloud) -> None:
    assert nic_option("blue") == NicRequest(network="blue")
    assert nic_option("blue,ip=192.0.2.10/24") == NicRequest(
        network="blue", address="192.0.2.10/24"
    )
    for bad in ("blue,mac=1", "blue,ip=", ",ip=192.0.2.1/24", "blue,ip=1/8,ip=2/8", "x" * 70):
        with pytest.raises(click.BadParameter):
            nic_option(bad)
    _setup(cloud)
    admin = CloudClient(http=cloud.client(ADMIN_TOKEN))
    vm = admin.create_server("a", "rt2", [nic_option("blue,ip=192.0.2.20/24"), "red"], project="p1")
    assert [(n.name, n.address) for n in vm.networks] == [("blue", "192.0.2.20/24"), ("red", None)]
