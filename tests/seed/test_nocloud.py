"""A NoCloud seed's contents: identity, keys, every NIC by MAC with the user's address."""

from __future__ import annotations

import json

from rtkvm.seed.nocloud import SeedNic, hostname_of, meta_data, network_config, user_data


def test_every_nic_is_matched_by_mac_named_in_order_and_gets_only_the_users_address() -> None:
    config = json.loads(
        network_config(
            [SeedNic("52:54:00:00:00:01", "192.0.2.10/24"), SeedNic("52:54:00:00:00:02", None)]
        )
    )
    assert config["version"] == 2
    eth0, eth1 = config["ethernets"]["eth0"], config["ethernets"]["eth1"]
    assert eth0["match"] == {"macaddress": "52:54:00:00:00:01"} and eth0["set-name"] == "eth0"
    assert eth0["addresses"] == ["192.0.2.10/24"]
    assert "addresses" not in eth1  # up, without an address: none is invented
    assert eth0["dhcp4"] is eth1["dhcp4"] is False  # unmanaged networks have no DHCP


def test_meta_data_and_user_data() -> None:
    meta = json.loads(meta_data("id-1", "vm-1", ["ssh-ed25519 AAAA k"]))
    assert meta == {
        "instance-id": "id-1",
        "local-hostname": "vm-1",
        "public-keys": ["ssh-ed25519 AAAA k"],
    }
    assert user_data(b"#!/bin/sh\necho hi\n") == b"#!/bin/sh\necho hi\n"
    assert user_data(None).startswith(b"#cloud-config")


def test_server_names_become_host_names() -> None:
    assert hostname_of("demo-debian") == "demo-debian"
    assert hostname_of("My_Server.v2") == "my-server-v2"
    assert hostname_of("___") == "server"
    assert len(hostname_of("a" * 80)) == 63
