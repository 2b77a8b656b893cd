"""State changes raced across two API processes, on PostgreSQL and SQLite: each acts once.

Every trial sends the racing requests to the two processes at the same
moment, then checks the outcome and the database's invariants
(:mod:`rtkvm.scheduler.invariants`). Before the instance row was locked for
each change, these failed 3 to 17 times in 20.
"""

from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path

import pytest

from rtkvm.db.engine import Database
from rtkvm.db.pgtest import PostgresServer
from rtkvm.scheduler.invariants import violations
from rtkvm.wire.user_client import CloudClient

from .conftest import ADMIN, Twins, at_once, free_port, setup_site, start_api, wait_up

TRIALS = 20


def _check(twins: Twins) -> None:
    db = Database(twins.url)
    try:
        with db.read() as s:
            assert violations(s) == []
    finally:
        db.dispose()
    assert twins.admin(twins.b).check().ok


def _active(twins: Twins, site_member: str, agent: str) -> str:
    with twins.http(twins.a, site_member) as user, twins.http(twins.b, agent) as node:
        vm = user.post("/v1/instances", json={"name": "vm", "flavor": "rt2"})
        assert vm.status_code == 201, vm.text
        vid = vm.json()["id"]
        done = node.post(f"/v1/agent/instances/{vid}/state", json={"state": "active"})
        assert done.status_code == 200, done.text
        return str(vid)


def test_two_deleted_reports_release_once(twins: Twins) -> None:
    site = setup_site(twins, rt_quota=4)
    for _ in range(TRIALS):
        vid = _active(twins, site.member, site.agent)
        with twins.http(twins.a, site.member) as user:
            assert user.delete(f"/v1/instances/{vid}").status_code == 204
        with twins.http(twins.a, site.agent) as on_a, twins.http(twins.b, site.agent) as on_b:
            path, body = f"/v1/agent/instances/{vid}/state", {"state": "deleted"}
            answers = at_once(
                partial(on_a.post, path, json=body), partial(on_b.post, path, json=body)
            )
        assert sorted(r.status_code for r in answers) == [200, 200], [r.text for r in answers]
        _check(twins)
    assert twins.admin(twins.a).usage("p1").rt_cores_in_use == 0


def test_two_force_deletes_release_once(twins: Twins) -> None:
    site = setup_site(twins, rt_quota=4)
    for _ in range(TRIALS):
        vid = _active(twins, site.member, site.agent)
        with twins.http(twins.b, site.agent) as node:
            failed = {"state": "error", "fault": "lost"}
            assert node.post(f"/v1/agent/instances/{vid}/state", json=failed).status_code == 200
        admin_a, admin_b = twins.admin(twins.a), twins.admin(twins.b)
        at_once(
            partial(admin_a.delete_server, vid, force=True),
            partial(admin_b.delete_server, vid, force=True),
        )
        _check(twins)
    assert twins.admin(twins.a).usage("p1").rt_cores_in_use == 0


def test_a_delete_racing_an_active_report_is_never_lost(twins: Twins) -> None:
    site = setup_site(twins)
    lost = 0
    for _ in range(TRIALS):
        with twins.http(twins.a, site.member) as user, twins.http(twins.b, site.agent) as node:
            vid = user.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}).json()["id"]
            deleted, reported = at_once(
                partial(user.delete, f"/v1/instances/{vid}"),
                partial(node.post, f"/v1/agent/instances/{vid}/state", json={"state": "active"}),
            )
            assert deleted.status_code == 204
            assert reported.status_code in (200, 409), reported.text
            state = user.get(f"/v1/instances/{vid}").json()["state"]
            lost += state == "active"
            assert state == "deleting", (state, reported.text)
            node.post(f"/v1/agent/instances/{vid}/state", json={"state": "deleted"})
        _check(twins)
    assert lost == 0


def test_two_power_actions_at_once_record_one_task(twins: Twins) -> None:
    """A stop and a reboot sent to both processes at once: one wins (202), the other is told
    to wait (409); a stop twice is one task; a delete under a stop leaves no task behind."""
    site = setup_site(twins, rt_quota=4)
    for trial in range(TRIALS):
        vid = _active(twins, site.member, site.agent)
        path = f"/v1/instances/{vid}/action"
        second = {"action": "reboot"} if trial % 2 else {"action": "stop"}
        with twins.http(twins.a, site.member) as on_a, twins.http(twins.b, site.member) as on_b:
            answers = at_once(
                partial(on_a.post, path, json={"action": "stop"}),
                partial(on_b.post, path, json=second),
            )
            codes = sorted(r.status_code for r in answers)
            task = on_a.get(f"/v1/instances/{vid}").json()["task"]
            if second["action"] == "stop":
                assert codes == [200, 202], [r.text for r in answers]
                assert task == "stopping"
            else:
                assert codes == [202, 409], [r.text for r in answers]
                won = next(r for r in answers if r.status_code == 202).json()["task"]
                assert task == won
            gone, again = at_once(
                partial(on_a.delete, f"/v1/instances/{vid}"),
                partial(on_b.post, path, json={"action": "reboot", "hard": True}),
            )
            assert gone.status_code == 204 and again.status_code in (404, 409), again.text
            shown = on_a.get(f"/v1/instances/{vid}").json()
            assert (shown["state"], shown["task"]) == ("deleting", None), shown
        with twins.http(twins.b, site.agent) as node:
            node.post(f"/v1/agent/instances/{vid}/state", json={"state": "deleted"})
        _check(twins)
    assert twins.admin(twins.a).usage("p1").rt_cores_in_use == 0


def test_a_network_deleted_under_a_create_is_never_dropped_from_it(twins: Twins) -> None:
    site = setup_site(twins)
    admin_a = twins.admin(twins.a)
    outcomes = set()
    for trial in range(TRIALS * 2):
        name = f"n{trial}"
        admin_a.create_network({"name": name, "physnet": "blue", "vlan": trial + 1, "shared": True})
        with twins.http(twins.b, site.member) as user, twins.http(twins.a, ADMIN) as adm:
            body = {"name": "vm", "flavor": "rt2", "networks": [name]}
            made, gone = at_once(
                partial(user.post, "/v1/instances", json=body),
                partial(adm.delete, f"/v1/networks/{name}"),
            )
            assert made.status_code in (201, 404), made.text
            assert gone.status_code in (204, 409), gone.text
            assert (made.status_code, gone.status_code) in ((201, 409), (404, 204))
            outcomes.add((made.status_code, gone.status_code))
            if made.status_code == 201:
                vm = made.json()
                assert [n["name"] for n in vm["networks"]] == [name]
                user.delete(f"/v1/instances/{vm['id']}")
                with twins.http(twins.a, site.agent) as node:
                    node.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "deleted"})
        _check(twins)


def test_two_creates_asking_for_one_address_get_it_once(twins: Twins) -> None:
    """Two users' creates for the same IP on blue, at once on both processes: one gets it,
    the other is told who holds it (409); the winner's delete frees it for the next trial."""
    site = setup_site(twins, rt_quota=8)
    twins.admin(twins.a).create_network({"name": "blue", "physnet": "blue", "shared": True})
    for trial in range(TRIALS):
        nic = {"network": "blue", "address": f"192.0.2.{10 + trial % 2}/24"}
        with twins.http(twins.a, site.member) as on_a, twins.http(twins.b, site.member) as on_b:
            answers = at_once(
                partial(on_a.post, "/v1/instances", json={"name": "x", "flavor": "rt2",
                                                          "networks": [nic]}),
                partial(on_b.post, "/v1/instances", json={"name": "y", "flavor": "rt2",
                                                          "networks": [nic]}),
            )  # fmt: skip
            assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
            won = next(r for r in answers if r.status_code == 201).json()
            lost = next(r for r in answers if r.status_code == 409).json()["detail"]
            assert f"held by instance {won['name']} ({won['id']}" in lost
            on_a.delete(f"/v1/instances/{won['id']}")
        with twins.http(twins.b, site.agent) as node:
            node.post(f"/v1/agent/instances/{won['id']}/state", json={"state": "deleted"})
        _check(twins)


def test_an_image_deleted_while_a_server_is_created_on_it_is_one_or_the_other(
    twins: Twins, tmp_path: Path
) -> None:
    """A delete of an image on one process and a create of a server on it on the other:
    either the server got the image (201, and the delete is refused 409) or the image is
    gone (204, and the create is refused), never a server whose image was deleted."""
    site = setup_site(twins, rt_quota=8)
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    member = CloudClient(twins.a, site.member, timeout=30)
    outcomes: set[tuple[int, int]] = set()
    for trial in range(TRIALS):
        image = member.upload_image(member.create_image(f"img{trial}").id, disk)
        body = {"name": f"vm{trial}", "flavor": "rt2", "image": image.id}
        with twins.http(twins.a, site.member) as on_a, twins.http(twins.b, site.member) as on_b:
            deleted, created = at_once(
                partial(on_a.delete, f"/v1/images/{image.id}"),
                partial(on_b.post, "/v1/instances", json=body),
            )
            pair = (deleted.status_code, created.status_code)
            assert pair in {(409, 201), (204, 404), (204, 409)}, (deleted.text, created.text)
            outcomes.add(pair)
            if created.status_code == 201:
                vm = created.json()
                on_a.delete(f"/v1/instances/{vm['id']}")
                with twins.http(twins.b, site.agent) as node:
                    node.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "deleted"})
                assert on_b.delete(f"/v1/images/{image.id}").status_code == 204
    assert not list((tmp_path / "image-store").glob("*-*"))  # every image's file is gone
    print(f"\nimage delete vs server create, {TRIALS} trials: outcomes {sorted(outcomes)}")
    _check(twins)


@pytest.mark.parametrize("attempt", range(3))
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_two_api_processes_start_together_on_a_new_database(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, attempt: int
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/rtkvm.db"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.new_database()
    ports = [free_port(), free_port()]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start_api(url, port, log) for port, log in zip(ports, logs, strict=True)]
    try:
        for port, proc, log in zip(ports, procs, logs, strict=True):
            wait_up(port, proc, log)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=15)


def test_uploads_at_once_on_two_processes_never_pass_the_image_quota(
    twins: Twins, tmp_path: Path
) -> None:
    """Two uploads of 2 MiB at once, one on each API process, into a quota with room for
    one: one is active, the other refused (403), the counter is the active image's size."""
    site = setup_site(twins)
    admin = twins.admin(twins.a)
    disk = tmp_path / "disk.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(disk), "2M"], check=True)
    data = disk.read_bytes()
    octets = {"Content-Type": "application/octet-stream"}
    outcomes: set[tuple[int, int]] = set()
    for trial in range(TRIALS // 2):
        admin.set_quota("p1", image_bytes=3 * 2**20)
        member = CloudClient(twins.a, site.member, timeout=30)
        ids = [member.create_image(f"q{trial}-{n}").id for n in range(2)]
        with twins.http(twins.a, site.member) as on_a, twins.http(twins.b, site.member) as on_b:
            answers = at_once(
                partial(on_a.put, f"/v1/images/{ids[0]}/file", content=data, headers=octets),
                partial(on_b.put, f"/v1/images/{ids[1]}/file", content=data, headers=octets),
            )
            codes = tuple(sorted(a.status_code for a in answers))
            assert codes == (200, 403), [a.text for a in answers]
            outcomes.add(codes)
            assert admin.set_quota("p1").image_bytes_used == len(data)
            for image_id in ids:
                assert on_a.delete(f"/v1/images/{image_id}").status_code == 204
        assert admin.set_quota("p1").image_bytes_used == 0
    print(f"\nuploads racing for one image's room, {TRIALS // 2} trials: {sorted(outcomes)}")
    _check(twins)


def test_creates_at_once_on_two_processes_never_promise_more_disk_than_the_host_has(
    twins: Twins, tmp_path: Path
) -> None:
    """Two servers with 3 GiB disks at once, one create on each API process, on a host with
    5 GiB for disks: one is placed, the other refused (409), the host's counter is 3."""
    site = setup_site(twins, disk_gb=5)
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    member = CloudClient(twins.a, site.member, timeout=30)
    image = member.upload_image(member.create_image("img").id, disk)
    admin = twins.admin(twins.a)
    outcomes: set[tuple[int, int]] = set()
    for trial in range(TRIALS // 2):
        bodies = [
            {"name": f"vm{trial}-{n}", "flavor": "rt2", "image": image.id, "disk_gb": 3}
            for n in range(2)
        ]
        with twins.http(twins.a, site.member) as on_a, twins.http(twins.b, site.member) as on_b:
            answers = at_once(
                partial(on_a.post, "/v1/instances", json=bodies[0]),
                partial(on_b.post, "/v1/instances", json=bodies[1]),
            )
            codes = tuple(sorted(a.status_code for a in answers))
            assert codes == (201, 409), [a.text for a in answers]
            outcomes.add(codes)
            assert admin.host(site.host).disk_gb_used == 3
            [placed] = [a.json() for a in answers if a.status_code == 201]
            on_a.delete(f"/v1/instances/{placed['id']}")
            with twins.http(twins.b, site.agent) as node:
                gone = {"state": "deleted"}
                node.post(f"/v1/agent/instances/{placed['id']}/state", json=gone)
        assert admin.host(site.host).disk_gb_used == 0
    print(f"\ncreates racing for one disk's room, {TRIALS // 2} trials: {sorted(outcomes)}")
    _check(twins)
