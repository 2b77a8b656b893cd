"""rtkvm's probe guest in Glance: its PREEMPT_RT kernel, initramfs, and a disk that boots them.

Nova boots a kernel and initramfs directly when the server's image (an ``ami``)
names a kernel image (``aki``) and a ramdisk image (``ari``) in its properties,
with the kernel command line in ``os_command_line``. :func:`upload_probe`
uploads the three (the ``ami`` is a 1 MiB empty disk: everything runs from the
initramfs) unless images of those names exist, and returns their ids. The
command line keeps the guest's RT vCPUs free of its own noise and, with
``cyclictest``, runs cyclictest on them at every boot, printing its result
between rtkvm's console markers. This module must not start servers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rtkvm.cpuset import CpuSet
from rtkvm.guest.run import CyclictestParams, guest_cmdline
from rtkvm.openstack.session import RestAPI

DISK_BYTES = 1 << 20


class ImageAPI(RestAPI, Protocol):
    def upload(self, service_type: str, path: str, data: bytes, *, what: str) -> None: ...


@dataclass(frozen=True)
class ProbeImage:
    name: str
    image_id: str
    kernel_id: str
    ramdisk_id: str
    cmdline: str
    created: bool


def probe_cmdline(
    vcpus: int, rt_vcpus: CpuSet, *, accel: str, cyclictest: CyclictestParams | None
) -> str:
    extra = ""
    if cyclictest is not None:
        housekeeping = CpuSet(range(vcpus)) - rt_vcpus
        extra = f'rtkvm.cyclictest="{cyclictest.args(rt_vcpus, housekeeping)}"'
    return guest_cmdline(rt_vcpus, extra, accel=accel)


def find_image(api: RestAPI, name: str) -> dict[str, Any] | None:
    """Glance's first active image of that name, or None."""
    found = api.call("image", "GET", f"/v2/images?name={name}", what=f"look for image {name}")
    active = [i for i in found["images"] if i.get("status") == "active"]
    return active[0] if active else None


def _create(api: ImageAPI, name: str, fmt: str, data: bytes, props: dict[str, str]) -> str:
    body = {
        "name": name,
        "disk_format": fmt,
        "container_format": fmt,
        "visibility": "public",
        "rtkvm": "probe",
        **props,
    }
    made = api.call("image", "POST", "/v2/images", json=body, ok=(201,), what=f"create {name}")
    api.upload("image", f"/v2/images/{made['id']}/file", data, what=f"upload {name}")
    return str(made["id"])


def upload_probe(
    api: ImageAPI, name: str, kernel: Path, initramfs: Path, cmdline: str
) -> ProbeImage:
    existing = find_image(api, name)
    if existing is not None:
        return ProbeImage(
            name,
            existing["id"],
            existing.get("kernel_id", ""),
            existing.get("ramdisk_id", ""),
            existing.get("os_command_line", ""),
            False,
        )
    kernel_id = _create(api, f"{name}-kernel", "aki", kernel.read_bytes(), {})
    ramdisk_id = _create(api, f"{name}-initramfs", "ari", initramfs.read_bytes(), {})
    props = {"kernel_id": kernel_id, "ramdisk_id": ramdisk_id, "os_command_line": cmdline}
    image_id = _create(api, name, "ami", bytes(DISK_BYTES), props)
    return ProbeImage(name, image_id, kernel_id, ramdisk_id, cmdline, True)
