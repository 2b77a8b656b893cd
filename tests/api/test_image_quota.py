"""The per-project image quota: bytes of active images a project may keep in the store."""

from __future__ import annotations

from pathlib import Path

from tests.api.test_images import OCTETS, qemu_img, upload

from rtkvm.api.testing import Cloud, expect


def _image(tmp_path: Path, name: str, mib: int) -> bytes:
    """A raw image of ``mib`` MiB (raw: its size on the wire is its size)."""
    path = tmp_path / name
    qemu_img("-f", "raw", str(path), f"{mib}M")
    return path.read_bytes()


def test_uploads_fill_the_quota_and_deletes_free_it(cloud: Cloud, tmp_path: Path) -> None:
    cloud.project("p1", quota_image_bytes=3 * 2**20)
    alice = cloud.member("alice", "p1")
    one = _image(tmp_path, "one", 2)
    first = expect(upload(alice, "first", one)[0], 200)
    assert first["status"] == "active"
    assert cloud.api.set_quota("p1").image_bytes_used == 2 * 2**20
    answer, made = upload(alice, "second", one)
    assert answer.status_code == 403, answer.text
    why = answer.json()["detail"]
    assert "room left in the project's image quota (1048576 bytes)" in why
    assert "--image-gib" in why
    shown = expect(alice.get(f"/v1/images/{made['id']}"), 200)
    assert shown["status"] == "queued" and shown["fault"] == why  # nothing kept, said why
    store = Path(cloud.app.state.services.settings.image_store_dir)
    assert not list(store.glob("*.part")) and not (store / made["id"]).exists()
    expect(alice.delete("/v1/images/first"), 204)
    assert cloud.api.set_quota("p1").image_bytes_used == 0
    again = alice.put(f"/v1/images/{made['id']}/file", content=one, headers=OCTETS)
    assert expect(again, 200)["status"] == "active"


def test_a_full_quota_refuses_before_the_data_and_an_admin_may_raise_it(
    cloud: Cloud, tmp_path: Path
) -> None:
    cloud.project("p1", quota_image_bytes=0)
    alice = cloud.member("alice", "p1")
    answer, _ = upload(alice, "any", _image(tmp_path, "one", 1))
    assert answer.status_code == 403
    assert "uses its whole image quota (0 of 0 bytes)" in answer.json()["detail"]
    raised = cloud.api.set_quota("p1", image_bytes=2**30)
    assert (raised.quota_image_bytes, raised.image_bytes_used) == (2**30, 0)
    unlimited = cloud.api.set_quota("p1", image_bytes=None)
    assert unlimited.quota_image_bytes is None
    assert cloud.admin.put("/v1/projects/p1/quota", json={"image_bytes": -1}).status_code == 422
