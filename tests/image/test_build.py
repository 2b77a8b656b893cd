"""Image assembly from unpacked packages, with apt-get/dpkg-deb replaced at the process boundary."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from rtkvm.errors import ImageError
from rtkvm.image.build import build_image, kernel_package, load_image_spec
from rtkvm.image.cpio import read_newc

KVER = "6.1.0-99-rt-amd64"


class FakeApt:
    """Plays apt-get download and dpkg-deb: a .deb here is a text file naming its contents."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.spec = load_image_spec()

    def __call__(self, argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        out = ""
        if argv[:2] == ["apt-get", "download"]:
            name = argv[-1]
            (cwd / f"{name}_1.0_amd64.deb").write_text(name)
        elif argv[:2] == ["dpkg-deb", "-f"]:
            name = Path(argv[2]).read_text()
            field = argv[3]
            if field == "Depends":
                out = f"linux-image-{KVER} (= 1.0)" if name == "linux-image-rt-amd64" else ""
            else:
                out = "1.0"
        elif argv[:2] == ["dpkg-deb", "-x"]:
            self._unpack(Path(argv[2]).read_text(), Path(argv[3]))
        return subprocess.CompletedProcess(argv, 0, out, "")

    def _unpack(self, name: str, tree: Path) -> None:
        def put(rel: str, data: bytes) -> None:
            path = tree / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        if name.startswith("linux-image-"):
            put(f"boot/vmlinuz-{KVER}", b"kernel")
            for module in self.spec.modules:
                put(f"lib/modules/{KVER}/{module}", module.encode())
        else:
            for f in self.spec.files:
                put(f.src, f"{f.src} from {name}".encode())


def test_build_is_cached_and_reproducible(tmp_path: Path) -> None:
    apt = FakeApt()
    first = build_image(tmp_path / "cache", tmp_path / "out1", run=apt)
    assert first.kernel_release == KVER
    assert "linux-image-rt-amd64" in first.downloaded
    second = build_image(tmp_path / "cache", tmp_path / "out2", run=apt)
    assert second.downloaded == ()  # everything came from the cache
    assert first.initramfs_sha256 == second.initramfs_sha256
    assert (tmp_path / "out1/initramfs.cpio.gz").read_bytes() == (
        tmp_path / "out2/initramfs.cpio.gz"
    ).read_bytes()
    assert first.kernel.read_bytes() == b"kernel"


def test_initramfs_has_init_modules_and_console(tmp_path: Path) -> None:
    built = build_image(tmp_path / "c", tmp_path / "o", run=FakeApt())
    members = {p: d for p, _, d in read_newc(gzip.decompress(built.initramfs.read_bytes()))}
    assert members["init"].startswith(b"#!/bin/sh")
    assert b"RTKVM-READY" in members["init"]
    assert "dev/console" in members
    assert "usr/bin/cyclictest" in members
    assert members["etc/rtkvm/rtthist.awk"].startswith(b"BEGIN { FS")
    order = members["etc/rtkvm/modules"].decode().split()
    assert order.index("kernel/drivers/virtio/virtio.ko") < order.index(
        "kernel/drivers/virtio/virtio_pci.ko"
    )
    for module in order:
        assert f"lib/modules/{KVER}/{module}" in members


def test_source_date_epoch_changes_the_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = build_image(tmp_path / "c", tmp_path / "a", run=FakeApt())
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    b = build_image(tmp_path / "c", tmp_path / "b", run=FakeApt())
    assert a.initramfs_sha256 != b.initramfs_sha256


def test_missing_file_in_packages_is_an_error_naming_it(tmp_path: Path) -> None:
    apt = FakeApt()
    original = apt._unpack

    def without_cyclictest(name: str, tree: Path) -> None:
        original(name, tree)
        (tree / "usr/bin/cyclictest").unlink(missing_ok=True)

    apt._unpack = without_cyclictest  # type: ignore[method-assign]
    with pytest.raises(ImageError, match="usr/bin/cyclictest"):
        build_image(tmp_path / "c", tmp_path / "o", run=apt)


@pytest.mark.parametrize(
    ("depends", "want"),
    [
        ("linux-image-6.1.0-56-rt-amd64 (= 6.1.192-2)", "linux-image-6.1.0-56-rt-amd64"),
        ("foo, linux-image-6.1.0-1-rt-amd64", "linux-image-6.1.0-1-rt-amd64"),
    ],
)
def test_kernel_package_from_depends(depends: str, want: str) -> None:
    assert kernel_package(depends, "linux-image-rt-amd64") == want


def test_kernel_package_absent_is_an_error() -> None:
    with pytest.raises(ImageError):
        kernel_package("libc6", "linux-image-rt-amd64")


def test_init_script_never_passes_the_removed_n_flag() -> None:
    init = load_image_spec().init
    (line,) = [x for x in init.splitlines() if x.strip().startswith("cyclictest ")]
    assert line.split()[1:] == ["$args", "2>&1"]


def test_unchanged_inputs_keep_the_output_and_a_tampered_one_is_rebuilt(tmp_path: Path) -> None:
    apt = FakeApt()
    first = build_image(tmp_path / "c", tmp_path / "o", run=apt)
    assert not first.reused
    unpacks = sum(1 for c in apt.calls if c[:2] == ["dpkg-deb", "-x"])
    again = build_image(tmp_path / "c", tmp_path / "o", run=apt)
    assert again.reused and again.initramfs_sha256 == first.initramfs_sha256
    assert sum(1 for c in apt.calls if c[:2] == ["dpkg-deb", "-x"]) == unpacks  # no unpack
    first.initramfs.write_bytes(b"tampered")
    repaired = build_image(tmp_path / "c", tmp_path / "o", run=apt)
    assert not repaired.reused and repaired.initramfs_sha256 == first.initramfs_sha256
    forced = build_image(tmp_path / "c", tmp_path / "o", run=apt, rebuild=True)
    assert not forced.reused
