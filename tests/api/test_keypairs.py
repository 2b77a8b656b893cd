"""Keypairs and a server's first-boot inputs through the API: the user's own keys,
user-data checked, both only for a server with an image, and on its agent's work list
only while it is built."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from rtkvm.api.testing import Cloud, expect
from rtkvm.cli.main import cli
from rtkvm.testing.keys import ED25519, ED25519_FINGERPRINT, RSA_1024
from rtkvm.wire.user_client import CloudClient

OCTETS = {"Content-Type": "application/octet-stream"}


def _image(cloud: Cloud, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    made = expect(cloud.admin.post("/v1/images", json={"name": "deb", "shared": True}), 201)
    put = cloud.admin.put(f"/v1/images/{made['id']}/file", content=disk.read_bytes(),
                          headers=OCTETS)  # fmt: skip
    expect(put, 200)


def test_a_users_keypairs_are_their_own(cloud: Cloud) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    carol = cloud.member("carol", "p1")
    made = expect(alice.post("/v1/keypairs", json={"name": "laptop", "public_key": ED25519}), 201)
    assert (made["type"], made["fingerprint"]) == ("ssh-ed25519", ED25519_FINGERPRINT)
    twice = alice.post("/v1/keypairs", json={"name": "laptop", "public_key": ED25519})
    assert twice.status_code == 409
    weak = alice.post("/v1/keypairs", json={"name": "old", "public_key": RSA_1024})
    assert weak.status_code == 422 and "fewer than 2048" in weak.json()["detail"]
    assert [k["name"] for k in expect(alice.get("/v1/keypairs"), 200)] == ["laptop"]
    assert expect(carol.get("/v1/keypairs"), 200) == []
    assert carol.get("/v1/keypairs/laptop").status_code == 404
    expect(carol.post("/v1/keypairs", json={"name": "laptop", "public_key": ED25519}), 201)
    assert alice.delete("/v1/keypairs/laptop").status_code == 204
    assert alice.delete("/v1/keypairs/laptop").status_code == 204  # idempotent
    assert expect(carol.get("/v1/keypairs/laptop"), 200)["fingerprint"] == ED25519_FINGERPRINT


def test_a_servers_key_and_user_data_reach_its_agent_while_it_is_built(
    cloud: Cloud, tmp_path: Path
) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    cloud.network("blue", "blue", shared=True)
    cloud.network("red", "red", shared=True)
    agent = cloud.host("h1", physnets=("blue", "red"))
    _image(cloud, tmp_path)
    expect(alice.post("/v1/keypairs", json={"name": "laptop", "public_key": ED25519}), 201)
    script = b"#!/bin/sh\necho hello > /var/tmp/hello\n"
    body = {
        "name": "My_VM",
        "flavor": "rt2",
        "image": "deb",
        "key_name": "laptop",
        "user_data": base64.b64encode(script).decode(),
        "networks": [
            {"network": "blue", "address": "192.0.2.10/24"},
            {"network": "red", "address": "198.51.100.7/24"},  # any NIC of an image server
        ],
    }
    vm = expect(alice.post("/v1/instances", json=body), 201)
    assert vm["key_name"] == "laptop"
    alice.delete("/v1/keypairs/laptop")  # the server keeps its copy
    [work] = expect(agent.get("/v1/agent/instances"), 200)
    assert work["seed"]["hostname"] == "my-vm"
    assert work["seed"]["public_keys"] == [ED25519]
    assert base64.b64decode(work["seed"]["user_data"]) == script
    assert [p["address"] for p in work["networks"]] == ["192.0.2.10/24", "198.51.100.7/24"]
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "active"}), 200)
    [work] = expect(agent.get("/v1/agent/instances"), 200)
    assert work["seed"] is None  # made once, at the first build


def test_first_boot_inputs_are_refused_where_they_cannot_work(cloud: Cloud, tmp_path: Path) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    cloud.network("blue", "blue", shared=True)
    cloud.network("red", "red", shared=True)
    cloud.host("h1", physnets=("blue", "red"))
    _image(cloud, tmp_path)
    data = base64.b64encode(b"#cloud-config\n").decode()
    cases = [
        ({"user_data": data}, 422, "give an image"),
        ({"image": "deb", "key_name": "nope"}, 404, "keypair 'nope' not found"),
        ({"image": "deb", "user_data": "***"}, 422, "must be base64"),
        ({"image": "deb", "user_data": base64.b64encode(b"x" * 65536).decode()}, 422, "65535"),
        (
            {"networks": ["blue", {"network": "red", "address": "198.51.100.7/24"}]},
            422,
            "first NIC only",
        ),
    ]
    for extra, status, words in cases:
        answer = alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2", **extra})
        assert answer.status_code == status, (extra, answer.text)
        assert words in answer.json()["detail"], answer.text


def test_the_cli_imports_a_key_and_creates_a_server_with_it_and_user_data(
    cloud: Cloud, tmp_path: Path
) -> None:
    cloud.project("p1")
    cloud.flavor("rt2", 2)
    agent = cloud.host("h1")
    _image(cloud, tmp_path)
    api = CloudClient(http=cloud.member("alice", "p1"))

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["cloud", *args], obj={"client": api})

    pub = tmp_path / "id_ed25519.pub"
    pub.write_text(ED25519 + "\n")
    made = run("keypair", "create", "laptop", "--public-key", str(pub), "-f", "json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["fingerprint"] == ED25519_FINGERPRINT
    assert ED25519_FINGERPRINT in run("keypair", "list").output
    script = tmp_path / "user-data"
    script.write_bytes(b"#!/bin/sh\necho hi\n")
    vm = run("server", "create", "vm", "--flavor", "rt2", "--image", "deb", "--key-name",
             "laptop", "--user-data", str(script), "-f", "json")  # fmt: skip
    assert vm.exit_code == 0, vm.output
    [work] = expect(agent.get("/v1/agent/instances"), 200)
    assert base64.b64decode(work["seed"]["user_data"]) == b"#!/bin/sh\necho hi\n"
    assert run("keypair", "delete", "laptop").exit_code == 0
    assert run("keypair", "list").output.count("laptop") == 0
