"""A server booting the tenant's image, end to end through the agent: the base fetched
once and checked, a copy-on-write disk per server, the domain's disk served by an I/O
thread on housekeeping CPUs, and the disk gone with the server (the base stays).

The agent is rtkvm's own, stepping against the real API with libvirt's test driver;
disks are made by the real qemu-img.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import libvirt
import pytest

from rtkvm.agent.images import BaseImages, backing_file, disk_path, seed_path
from rtkvm.agent.names import domain_name, nic_mac
from rtkvm.api.testing import Cloud, expect
from rtkvm.errors import GuestError
from rtkvm.guest.hypervisor import LibvirtHypervisor
from rtkvm.testing.keys import ED25519
from rtkvm.wire.images import ImageRef

from .conftest import TEST_URI, MakeAgent, small_flavor
from .fakes import FakeHypervisor, FakeSwitch

OCTETS = {"Content-Type": "application/octet-stream"}


def _image(cloud: Cloud, tmp_path: Path, name: str = "deb") -> dict[str, object]:
    path = tmp_path / f"{name}.upload"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    made = expect(cloud.admin.post("/v1/images", json={"name": name, "shared": True}), 201)
    put = cloud.admin.put(
        f"/v1/images/{made['id']}/file", content=path.read_bytes(), headers=OCTETS
    )
    return dict(expect(put, 200))


def _info(path: Path) -> dict[str, object]:
    done = subprocess.run(
        ["qemu-img", "info", "--output=json", "--force-share", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout))


def test_a_server_boots_its_own_disk_over_a_base_fetched_once(
    cloud: Cloud, make_agent: MakeAgent, libvirt_test: LibvirtHypervisor, tmp_path: Path
) -> None:
    agent = make_agent("node1", libvirt_test)
    agent.register()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud, "rt2", 2)
    image = _image(cloud, tmp_path)
    body = {"flavor": "rt2", "image": "deb", "disk_gb": 2}
    one = expect(alice.post("/v1/instances", json={"name": "one", **body}), 201)
    two = expect(alice.post("/v1/instances", json={"name": "two", **body}), 201)
    first = agent.step()  # the base is fetched in the background: the loop goes on
    assert sorted(first.waiting) == sorted([one["id"], two["id"]]) and not first.created
    assert agent.executor.boot.images is not None
    agent.executor.boot.images.wait(30)
    assert sorted(agent.step().created) == sorted([one["id"], two["id"]])
    for vm in (one, two):
        assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["state"] == "active"

    [base] = (tmp_path / "base").iterdir()  # one base for both servers
    assert base.name == f"{image['sha256']}.qcow2" and (base.stat().st_mode & 0o777) == 0o444
    disk = disk_path(tmp_path, domain_name(one["id"]))
    info = _info(disk)
    assert info["format"] == "qcow2" and info["virtual-size"] == 2 * 2**30
    assert info["backing-filename"] == str(base) and info["backing-filename-format"] == "qcow2"

    conn = libvirt.open(TEST_URI)
    try:
        xml = conn.lookupByUUIDString(one["id"]).XMLDesc(0)
    finally:
        conn.close()
    assert f"<source file='{disk}'/>" in xml
    assert "cache='none' io='native' discard='unmap' iothread='1'" in xml
    assert "<iothreads>1</iothreads>" in xml
    emulator = one["emulator_cpus"]
    assert f"<iothreadpin iothread='1' cpuset='{emulator}'/>" in xml
    assert "<kernel>" not in xml and "<boot dev='hd'/>" in xml

    expect(alice.delete(f"/v1/instances/{one['id']}"), 204)
    assert agent.step().deleted[one["id"]].state == "deleted"
    assert not disk.exists()
    assert disk_path(tmp_path, domain_name(two["id"])).exists() and base.exists()


def test_a_base_that_arrives_wrong_is_not_used(tmp_path: Path) -> None:
    good = b"qcow2 bytes" * 100
    ref = ImageRef(
        id="9de1a7a4-125a-4ce6-9c8f-58e3e79f7d39",
        name="deb",
        disk_format="qcow2",
        size_bytes=len(good),
        virtual_size_bytes=2**20,
        sha256=hashlib.sha256(good).hexdigest(),
    )
    arrivals = [good[:-1] + b"X", good[:-5], good]

    def fetch(_: str, dest: Path) -> None:
        dest.write_bytes(arrivals.pop(0))

    images = BaseImages(tmp_path / "base", fetch)
    with pytest.raises(GuestError, match="arrived with sha256"):
        images.ensure(ref)
    with pytest.raises(GuestError, match="arrived with 1095 bytes"):
        images.ensure(ref)
    assert list((tmp_path / "base").iterdir()) == []  # nothing half-checked is kept
    path = images.ensure(ref)
    assert path.read_bytes() == good
    assert images.ensure(ref) == path  # there: not fetched again (arrivals is empty)


def test_a_new_image_server_gets_a_seed_with_its_key_user_data_and_every_nics_address(
    cloud: Cloud, make_agent: MakeAgent, switch: FakeSwitch, tmp_path: Path
) -> None:
    hv = FakeHypervisor()
    agent = make_agent("node1", hv, switch)
    agent.register()
    cloud.network("blue", "blue", shared=True)
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud, "rt2", 2)
    _image(cloud, tmp_path)
    expect(alice.post("/v1/keypairs", json={"name": "laptop", "public_key": ED25519}), 201)
    script = b"#cloud-config\nruncmd:\n  - [touch, /var/tmp/hello]\n"
    body = {
        "name": "vm",
        "flavor": "rt2",
        "image": "deb",
        "key_name": "laptop",
        "user_data": base64.b64encode(script).decode(),
        "networks": [{"network": "blue", "address": "192.0.2.10/24"}],
    }
    vm = expect(alice.post("/v1/instances", json=body), 201)
    assert agent.step().waiting == [vm["id"]]
    assert agent.executor.boot.images is not None
    agent.executor.boot.images.wait(30)
    assert agent.step().created[vm["id"]].state == "active"
    name = domain_name(vm["id"])
    seed = seed_path(tmp_path, name)
    assert (seed.stat().st_mode & 0o777) == 0o600  # user-data may hold secrets

    def read(file: str) -> str:
        done = subprocess.run(["mtype", "-i", str(seed), f"::{file}"], capture_output=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.decode()

    label = subprocess.run(["mlabel", "-s", "-i", str(seed), "::"], capture_output=True, text=True)
    assert "CIDATA" in label.stdout
    assert json.loads(read("meta-data"))["public-keys"] == [ED25519]
    assert json.loads(read("meta-data"))["instance-id"] == vm["id"]
    assert read("user-data").encode() == script
    eth0 = json.loads(read("network-config"))["ethernets"]["eth0"]
    assert eth0["match"]["macaddress"] == nic_mac(vm["id"], 0)
    assert eth0["addresses"] == ["192.0.2.10/24"]
    _, _, xml = hv.defined[name]
    assert f"<source file='{seed}'/>" in xml or f'<source file="{seed}"/>' in xml
    assert ("<readonly/>" in xml and "dev='vdb'" in xml) or 'dev="vdb"' in xml

    expect(alice.delete(f"/v1/instances/{vm['id']}"), 204)
    assert agent.step().deleted[vm["id"]].state == "deleted"
    assert not seed.exists() and not disk_path(tmp_path, name).exists()


def test_a_base_no_disk_uses_is_deleted_a_day_after_its_last_use(tmp_path: Path) -> None:
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    used, unused, fresh = (base_dir / f"{c * 64}.qcow2" for c in "abc")
    for base in (used, unused, fresh):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "1M"], check=True)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(used),
         str(tmp_path / "rtkvm-x.disk.qcow2")],
        check=True,
    )  # fmt: skip
    day_ago = time.time() - 86401
    for base in (used, unused):
        os.utime(base, (day_ago, day_ago))
    assert backing_file(tmp_path / "rtkvm-x.disk.qcow2") == str(used)
    images = BaseImages(base_dir, lambda _id, _dest: None)
    assert images.prune(tmp_path) == [unused]
    assert used.exists() and fresh.exists() and not unused.exists()


def test_a_base_that_would_fill_the_disk_is_not_fetched(tmp_path: Path) -> None:
    fetched: list[str] = []
    huge = ImageRef(
        id="9de1a7a4-125a-4ce6-9c8f-58e3e79f7d39",
        name="huge",
        disk_format="qcow2",
        size_bytes=1 << 60,
        virtual_size_bytes=1 << 60,
        sha256="0" * 64,
    )
    images = BaseImages(tmp_path / "base", lambda image_id, _dest: fetched.append(image_id))
    with pytest.raises(GuestError, match="free space on this host"):
        images.ensure(huge)
    assert fetched == []
