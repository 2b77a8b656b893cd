"""The image store through the API: uploads judged by qemu-img, visibility, in-use, agents.

Images are made with the real qemu-img (qemu-utils); the store is a
temporary directory (tests/api/conftest.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rtkvm.api.app import create_app
from rtkvm.api.testing import ADMIN_TOKEN, Cloud, expect
from rtkvm.cli.main import cli
from rtkvm.settings import Settings
from rtkvm.wire.user_client import CloudClient

OCTETS = {"Content-Type": "application/octet-stream"}


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", "create", "-q", *args], check=True)


@pytest.fixture
def qcow2(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"  # the name says nothing: the format is detected
    qemu_img("-f", "qcow2", str(path), "100M")
    return path


def upload(client: TestClient, name: str, data: bytes, **body: Any) -> Any:
    made = expect(client.post("/v1/images", json={"name": name, **body}), 201)
    assert made["status"] == "queued"
    return client.put(f"/v1/images/{made['id']}/file", content=data, headers=OCTETS), made


def test_a_qcow2_upload_becomes_active_with_what_qemu_img_found(
    cloud: Cloud, qcow2: Path, app: FastAPI
) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    data = qcow2.read_bytes()
    answer, made = upload(alice, "deb", data)
    image = expect(answer, 200)
    assert image["status"] == "active" and image["disk_format"] == "qcow2"
    assert image["virtual_size_bytes"] == 100 * 2**20
    assert image["size_bytes"] == len(data)
    assert image["sha256"] == hashlib.sha256(data).hexdigest()
    store = Path(app.state.services.settings.image_store_dir)
    assert (store / made["id"]).read_bytes() == data
    assert not list(store.glob("*.part"))
    assert (store.stat().st_mode & 0o777) == 0o700
    again = alice.put(f"/v1/images/{made['id']}/file", content=b"x", headers=OCTETS)
    assert again.status_code == 409 and "uploaded once" in again.json()["detail"]


def test_a_raw_upload_is_raw_whatever_its_name(cloud: Cloud, tmp_path: Path) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    answer, _ = upload(alice, "raw", b"\0" * 1024 * 1024)
    image = expect(answer, 200)
    assert image["disk_format"] == "raw" and image["virtual_size_bytes"] == 1024 * 1024


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (("-f", "qcow2", "-F", "raw", "-b", "/etc/hostname"), "backing file"),
        (("-f", "qcow2", "-o", "data_file=/tmp/rtkvm-test-elsewhere.raw"), "external file"),
        (("-f", "vmdk"), "vmdk image"),
    ],
)
def test_an_image_that_could_open_other_files_or_that_qemu_would_not_boot_is_refused(
    cloud: Cloud, tmp_path: Path, app: FastAPI, make: tuple[str, ...], words: str
) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    path = tmp_path / "evil.qcow2"
    qemu_img(*make, str(path), "1M")
    answer, made = upload(alice, "evil", path.read_bytes())
    assert answer.status_code == 422 and words in answer.json()["detail"]
    after = expect(alice.get(f"/v1/images/{made['id']}"), 200)
    assert after["status"] == "queued" and words in after["fault"]
    store = Path(app.state.services.settings.image_store_dir)
    assert not any(store.iterdir())  # nothing kept


@pytest.fixture
def small_cloud(db_url: str, tmp_path: Path) -> Iterator[Cloud]:
    """A cloud that takes uploads of at most 4 MiB and disks of at most 1 GiB."""
    settings = Settings(
        database_url=db_url,
        bootstrap_admin_token=ADMIN_TOKEN,
        image_store_dir=str(tmp_path / "store"),
        image_max_bytes=4 * 2**20,
        image_max_virtual_bytes=2**30,
    )
    app = create_app(settings)
    helper = Cloud(app)
    yield helper
    helper.close()
    app.state.services.db.dispose()


def test_junk_oversized_and_huge_virtual_disks_are_refused(
    small_cloud: Cloud, tmp_path: Path
) -> None:
    cloud = small_cloud
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    big, _ = upload(alice, "big", b"\0" * (5 * 2**20))
    assert big.status_code == 413 and "larger than this cloud takes" in big.json()["detail"]
    claims = tmp_path / "claims.qcow2"
    qemu_img("-f", "qcow2", str(claims), "2G")
    huge, _ = upload(alice, "huge", claims.read_bytes())
    assert huge.status_code == 422 and "virtual size" in huge.json()["detail"]
    empty, _ = upload(alice, "empty", b"")
    assert empty.status_code == 422


def test_members_see_their_own_and_shared_images_and_only_admins_share(
    cloud: Cloud, qcow2: Path
) -> None:
    cloud.project("p1")
    cloud.project("p2")
    alice = cloud.member("alice", "p1")
    bob = cloud.member("bob", "p2")
    refused = alice.post("/v1/images", json={"name": "x", "shared": True})
    assert refused.status_code == 403
    expect(upload(alice, "mine", qcow2.read_bytes())[0], 200)
    expect(upload(cloud.admin, "base", qcow2.read_bytes(), shared=True)[0], 200)
    assert {i["name"] for i in expect(bob.get("/v1/images"), 200)} == {"base"}
    assert {i["name"] for i in expect(alice.get("/v1/images"), 200)} == {"mine", "base"}
    assert bob.get("/v1/images/mine").status_code == 404
    assert bob.delete("/v1/images/base").status_code == 403
    twice = alice.post("/v1/images", json={"name": "mine"})
    assert twice.status_code == 409 and "already has an image named" in twice.json()["detail"]
    assert alice.delete("/v1/images/mine").status_code == 204
    expect(alice.post("/v1/images", json={"name": "mine"}), 201)  # the name is free again


def test_a_server_boots_an_image_which_cannot_be_deleted_while_it_runs(
    cloud: Cloud, qcow2: Path, app: FastAPI
) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    agent = cloud.host("h1")
    other = cloud.host("h2")
    image = expect(upload(alice, "deb", qcow2.read_bytes())[0], 200)
    small = alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2", "image": "deb",
                                              "disk_gb": 0})  # fmt: skip
    assert small.status_code == 422
    vm = expect(
        alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2", "image": "deb"}), 201
    )
    assert vm["image"] == "deb" and vm["disk_gb"] == 1  # 100 MiB rounded up
    owner, stranger = (agent, other) if vm["host"] == "h1" else (other, agent)
    [work] = expect(owner.get("/v1/agent/instances"), 200)
    assert work["image_ref"]["sha256"] == image["sha256"]
    assert work["image_ref"]["disk_format"] == "qcow2"
    fetched = owner.get(f"/v1/agent/images/{image['id']}/file")
    assert fetched.status_code == 200 and fetched.content == qcow2.read_bytes()
    assert fetched.headers["x-image-sha256"] == image["sha256"]
    assert stranger.get(f"/v1/agent/images/{image['id']}/file").status_code == 404
    assert alice.get(f"/v1/agent/images/{image['id']}/file").status_code in (401, 403)
    busy = alice.delete("/v1/images/deb")
    assert busy.status_code == 409 and "disk of 1 server" in busy.json()["detail"]
    assert expect(alice.get("/v1/images/deb"), 200)["in_use"] == 1
    assert alice.delete(f"/v1/instances/{vm['id']}").status_code in (202, 204)
    expect(owner.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "deleted"}), 200)
    assert alice.delete("/v1/images/deb").status_code == 204
    store = Path(app.state.services.settings.image_store_dir)
    assert not (store / image["id"]).exists()


def test_a_server_cannot_boot_an_image_without_data_or_another_projects_image(
    cloud: Cloud, qcow2: Path
) -> None:
    cloud.project("p1")
    cloud.project("p2")
    alice = cloud.member("alice", "p1")
    bob = cloud.member("bob", "p2")
    cloud.flavor("rt2", 2)
    cloud.host("h1")
    expect(alice.post("/v1/images", json={"name": "empty"}), 201)
    empty = alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2", "image": "empty"})
    assert empty.status_code == 409 and "upload its data first" in empty.json()["detail"]
    theirs = bob.post("/v1/instances", json={"name": "vm", "flavor": "rt2", "image": "empty"})
    assert theirs.status_code == 404
    alone = alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2", "disk_gb": 4})
    assert alone.status_code == 422 and "give an image too" in alone.json()["detail"]


def test_the_typed_client_uploads_a_file(cloud: Cloud, qcow2: Path) -> None:
    cloud.project("p1")
    api = CloudClient(http=cloud.member("alice", "p1"))
    made = api.create_image("deb")
    done = api.upload_image(made.id, qcow2)
    assert done.status == "active" and api.image("deb").id == made.id
    assert [i.name for i in api.images()] == ["deb"]


def test_a_round_trip_between_tenants_servers_runs_on_their_own_addresses(
    cloud: Cloud, qcow2: Path
) -> None:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)
    agent = cloud.host("h1", physnets=("blue", "red"))
    for net in ("blue", "red"):
        cloud.network(net, net, shared=True)
    expect(upload(alice, "deb", qcow2.read_bytes())[0], 200)

    def server(name: str, *nics: Any, image: str | None = "deb") -> Any:
        body = {"name": name, "flavor": "rt2", "networks": list(nics)}
        vm = expect(
            alice.post("/v1/instances", json=body | ({"image": image} if image else {})), 201
        )
        expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "active"}), 200)
        return vm

    server("a", "red", {"network": "blue", "address": "192.0.2.21/24"})
    server("b", {"network": "blue", "address": "192.0.2.22/24"})
    bare = server("bare", "blue")
    server("probe", "blue", image=None)

    def rtt(client: str, peer: str, **params: Any) -> Any:
        body = {"kind": "rtt", "server": client, "peer": peer, "network": "blue"}
        return alice.post("/v1/measurements", json=body | ({"rtt": params} if params else {}))

    # a probe server is rebooted into the probe to be measured, a tenant's never: no mix
    mixed = rtt("a", "probe")
    assert mixed.status_code == 409, mixed.text
    assert "pick two of one kind" in mixed.json()["detail"]
    # rtkvm never sets an address in a tenant's system: both must have the one their user gave
    unaddressed = rtt("a", "bare")
    assert unaddressed.status_code == 422
    assert "bare has no address on network blue" in unaddressed.json()["detail"]
    assert "--network blue,ip=ADDR/PREFIX" in unaddressed.json()["detail"]
    other = rtt("a", "b", server_address="192.0.2.99/24")
    assert other.status_code == 422
    assert other.json()["detail"].startswith("rtt.server_address: instance b runs its tenant's")
    # blue is a's second NIC: a tenant's cloud-init configures every NIC, unlike the probe
    made = expect(rtt("a", "b", seconds=2, client_address="192.0.2.21/24"), 201)
    assert made["network"] == "blue"
    queued = expect(agent.get("/v1/agent/measurements"), 200)
    assert len(queued) == 1 and queued[0]["server"]["image_ref"]["name"] == "deb"
    assert queued[0]["peer"]["image_ref"]["name"] == "deb"
    params = queued[0]["params"]
    assert (params["client_address"], params["server_address"], params["seconds"]) == (
        "192.0.2.21/24",
        "192.0.2.22/24",
        2,
    )
    # cyclictest runs in a tenant's guest through its guest agent, without a reboot
    expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": bare["id"]}), 201)


def test_the_cli_uploads_boots_and_deletes_and_a_refused_upload_frees_its_name(
    cloud: Cloud, qcow2: Path, tmp_path: Path
) -> None:
    cloud.project("p1")
    cloud.flavor("rt2", 2)
    cloud.host("h1")
    api = CloudClient(http=cloud.member("alice", "p1"))

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["cloud", *args], obj={"client": api})

    made = run("image", "create", "deb", "--file", str(qcow2), "-f", "json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["disk_format"] == "qcow2"
    listed = run("image", "list")
    assert "deb" in listed.output and "qcow2" in listed.output
    bad = tmp_path / "bad.qcow2"
    qemu_img("-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", str(bad), "1M")
    refused = run("image", "create", "evil", "--file", str(bad))
    assert refused.exit_code != 0 and "backing file" in str(refused.exception or refused.output)
    assert [i.name for i in api.images()] == ["deb"]  # the refused one is gone
    server = run("server", "create", "vm", "--flavor", "rt2", "--image", "deb", "--disk", "3",
                 "-f", "json")  # fmt: skip
    assert server.exit_code == 0, server.output
    assert (json.loads(server.output)["image"], json.loads(server.output)["disk_gb"]) == ("deb", 3)
    busy = run("image", "delete", "deb")
    assert busy.exit_code != 0
