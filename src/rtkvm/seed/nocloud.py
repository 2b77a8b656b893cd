"""What a server's NoCloud seed says: its identity, keys, user-data and every NIC's address.

cloud-init reads a seed from a file system labelled ``cidata``
(:data:`LABEL`) holding ``meta-data`` (instance id, hostname, SSH public
keys), ``user-data`` (the tenant's, as given) and ``network-config``
(version 2: each NIC matched by its MAC and named ``ethN`` in the order the
user gave the networks; the address the user gave, or none: unmanaged
networks have no DHCP and rtkvm never invents an address). JSON is YAML,
so the generated files are JSON. Pure: the seed's file system is made by
:mod:`rtkvm.guest.seed`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

LABEL = "CIDATA"
"""cloud-init looks for the labels cidata and CIDATA; FAT labels are upper case."""
USER_DATA_MAX = 65535
"""Bytes of user-data, as in Nova."""


@dataclass(frozen=True)
class SeedNic:
    mac: str
    address: str | None
    """ADDR/PREFIX the user gave this NIC; None: up, without an address."""


def hostname_of(name: str) -> str:
    """A server name as a host name (RFC 1123 label: letters, digits, '-', at most 63)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].rstrip("-")
    return label or "server"


def meta_data(instance_id: str, hostname: str, public_keys: Sequence[str]) -> str:
    return json.dumps(
        {
            "instance-id": instance_id,
            "local-hostname": hostname,
            "public-keys": list(public_keys),
        },
        indent=2,
    )


def network_config(nics: Sequence[SeedNic]) -> str:
    ethernets: dict[str, object] = {}
    for index, nic in enumerate(nics):
        name = f"eth{index}"
        entry: dict[str, object] = {
            "match": {"macaddress": nic.mac},
            "set-name": name,
            "dhcp4": False,
            "dhcp6": False,
        }
        if nic.address is not None:
            entry["addresses"] = [nic.address]
        ethernets[name] = entry
    return json.dumps({"version": 2, "ethernets": ethernets}, indent=2)


def user_data(given: bytes | None) -> bytes:
    """The tenant's user-data as given; without any, an empty cloud-config (cloud-init
    needs the file)."""
    return given if given is not None else b"#cloud-config\n{}\n"
