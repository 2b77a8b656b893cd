"""Disk space is scheduled like pCPUs and memory: a host takes a server on an image only
while its servers' disks (their ``disk_gb``) fit in what its agent reported; a delete gives
the space back; a host that never reported takes no server with a disk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from rtkvm.agent.inventory import GIB, guest_disk_gb
from rtkvm.api.testing import Cloud, expect, host_report
from rtkvm.db.engine import Database
from rtkvm.scheduler.invariants import violations
from rtkvm.wire.agent_client import AgentClient

from .test_images import qcow2, upload

__all__ = ["qcow2"]  # the fixture, used by name


def _server(user: TestClient, name: str, **body: Any) -> Any:
    return user.post("/v1/instances", json={"name": name, "flavor": "rt2", **body})


def _host(cloud: Cloud, name: str = "h1") -> Any:
    return expect(cloud.admin.get(f"/v1/hosts/{name}"), 200)


def _invariants(cloud: Cloud) -> list[str]:
    db: Database = cloud.app.state.services.db
    with db.read() as s:
        return violations(s)


@pytest.fixture
def site(cloud: Cloud, qcow2: Path) -> TestClient:
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.flavor("rt2", 2)  # one RT vCPU
    expect(upload(alice, "deb", qcow2.read_bytes())[0], 200)
    return alice


def test_servers_disks_fill_a_host_and_a_delete_gives_the_space_back(
    cloud: Cloud, site: TestClient
) -> None:
    agent = cloud.host("h1", disk_gb=5)
    first = expect(_server(site, "a", image="deb", disk_gb=3), 201)
    assert (_host(cloud)["disk_gb_total"], _host(cloud)["disk_gb_used"]) == (5, 3)
    refused = _server(site, "b", image="deb", disk_gb=3)
    assert refused.status_code == 409, refused.text
    why = refused.json()["detail"]
    assert "a 3 GiB disk" in why and "1 host " in why and "without 3 GiB free for its disk" in why
    assert expect(_server(site, "c", image="deb", disk_gb=2), 201)["host"] == "h1"  # the rest
    assert expect(_server(site, "probe"), 201)["host"] == "h1"  # no disk: not counted
    assert _host(cloud)["disk_gb_used"] == 5
    assert _invariants(cloud) == []
    expect(site.delete(f"/v1/instances/{first['id']}"), 204)  # the agent tears it down
    assert _host(cloud)["disk_gb_used"] == 5  # until it is gone from the host
    gone = {"state": "deleted"}
    expect(agent.post(f"/v1/agent/instances/{first['id']}/state", json=gone), 200)
    assert _host(cloud)["disk_gb_used"] == 2
    assert expect(_server(site, "b2", image="deb", disk_gb=3), 201)["host"] == "h1"
    assert _invariants(cloud) == []


def test_a_host_that_never_reported_its_disk_takes_no_server_with_one(
    cloud: Cloud, site: TestClient
) -> None:
    agent = cloud.host("h1", disk_gb=None)
    refused = _server(site, "a", image="deb")
    assert refused.status_code == 409
    assert "never reported its disk space" in refused.json()["detail"]
    assert expect(_server(site, "probe"), 201)["host"] == "h1"
    assert _host(cloud)["disk_gb_total"] is None
    # the agent reports it at its next registration: the same create is placed
    AgentClient(http=agent).register(host_report(disk_gb=40))
    placed = expect(_server(site, "a2", image="deb"), 201)
    assert (placed["host"], placed["disk_gb"]) == ("h1", 1)  # the image's 100 MiB, rounded up
    assert _host(cloud)["disk_gb_used"] == 1
    assert _invariants(cloud) == []


def test_the_invariant_checker_catches_a_disk_counter_gone_wrong(
    cloud: Cloud, site: TestClient
) -> None:
    cloud.host("h1", disk_gb=10)
    expect(_server(site, "a", image="deb", disk_gb=4), 201)
    db: Database = cloud.app.state.services.db
    with db.write() as s:
        s.execute(text("UPDATE hosts SET disk_gb_used = 7"))
    assert _invariants(cloud) == ["host h1: disk_gb_used is 7, its servers' disks take 4"]


def test_the_agent_reports_free_space_plus_what_its_disks_already_take(tmp_path: Path) -> None:
    guests = tmp_path / "guests"
    (guests / "base").mkdir(parents=True)
    with (guests / "base" / "img").open("wb") as f:
        f.write(os.urandom(1 << 20))
    (guests / "rtkvm-x.disk.qcow2").write_bytes(b"\0" * 4096)

    class Fs:
        f_bavail, f_frsize = 3 * GIB // 4096, 4096

    def statvfs(path: str) -> Any:
        assert path == str(guests)
        return Fs()

    assert guest_disk_gb(guests, statvfs=statvfs) == 3  # 3 GiB free + 1 MiB taken, floored
    # a directory not made yet: the filesystem that will hold it
    seen: list[str] = []

    def parent_statvfs(path: str) -> Any:
        seen.append(path)
        return Fs()

    assert guest_disk_gb(tmp_path / "later" / "guests", statvfs=parent_statvfs) == 3
    assert seen == [str(tmp_path)]

    def unreadable(path: str) -> Any:
        raise PermissionError(13, "Permission denied", path)

    assert guest_disk_gb(guests, statvfs=unreadable) is None
