"""Build the Debian 12 RT guest image for tenants: a whole system on its own bootable disk.

Steps, none needing a loop mount or a mounted file system:

1. ``mmdebstrap`` installs image_debian_rt.toml's packages into a directory
   (the PREEMPT_RT kernel and its initrd, systemd, cloud-init,
   qemu-guest-agent, rt-tests, sockperf, ...);
2. the data's files are written into the tree and what must differ between
   servers (SSH host keys, machine id) is removed;
3. the boot partition is a FAT file made by ``mkfs.fat``, made bootable by
   ``syslinux --install`` and filled by ``mcopy`` (kernel, initrd, config);
4. the root partition is an ext4 file made from the tree by ``mke2fs -d``;
5. both are laid out behind an MBR (:mod:`rtkvm.image.mbr`, syslinux's boot
   code) in a raw disk, converted by ``qemu-img`` to ``debian-rt.qcow2``.

The result is cached with a manifest (package versions, kernel release,
sha256, sizes, the inputs' hash): the same data gives the same packages'
image, and a build with unchanged inputs is skipped. Timestamps and file
system ids are fixed, but two builds are not byte-identical (package
scripts write dates). This module must not upload the image or boot it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rtkvm.errors import DataError, ImageError
from rtkvm.footprint import IMAGE_CACHE_DIR, IMAGE_DIR
from rtkvm.image.mbr import TYPE_FAT16_LBA, TYPE_LINUX, Partition, master_boot_record
from rtkvm.shipped import parse_toml, shipped_text

DEFAULT_OUTPUT = Path(IMAGE_DIR.path) / "debian-rt"
DEFAULT_WORK = Path(IMAGE_CACHE_DIR.path)
DISK_NAME = "debian-rt.qcow2"
MBR_CODE = Path("/usr/lib/syslinux/mbr/mbr.bin")
SOURCE_DATE_EPOCH = "1700000000"
"""The fixed time written into file systems and package metadata where tools allow it."""
MIB = 1 << 20
TOOLS = ("mmdebstrap", "mkfs.fat", "syslinux", "mcopy", "mke2fs", "qemu-img")

Runner = Callable[[Sequence[str], "dict[str, str] | None"], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str], env: dict[str, str] | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        env={**os.environ, **(env or {})},
    )


@dataclass(frozen=True)
class TreeFile:
    path: str
    mode: int
    text: str


@dataclass(frozen=True)
class DebianRtSpec:
    suite: str
    mirror: str
    variant: str
    hostname: str
    packages: tuple[str, ...]
    dpkg_excludes: tuple[str, ...]
    dpkg_includes: tuple[str, ...]
    remove: tuple[str, ...]
    boot_label: str
    root_label: str
    boot_partition_mib: int
    root_minimum_mib: int
    root_headroom: float
    kernel_cmdline: str
    files: tuple[TreeFile, ...]
    syslinux_cfg: str


def load_spec(text: str | None = None) -> DebianRtSpec:
    """Parse image_debian_rt.toml (the shipped one by default)."""
    if text is None:
        text = shipped_text("image_debian_rt.toml")
    raw = parse_toml(text, "image_debian_rt.toml")
    try:
        return DebianRtSpec(
            suite=raw["suite"],
            mirror=raw["mirror"],
            variant=raw["variant"],
            hostname=raw["hostname"],
            packages=tuple(p["name"] for p in raw["package"]),
            dpkg_excludes=tuple(raw["dpkg_excludes"]),
            dpkg_includes=tuple(raw["dpkg_includes"]),
            remove=tuple(raw["remove"]),
            boot_label=raw["boot_label"],
            root_label=raw["root_label"],
            boot_partition_mib=int(raw["boot_partition_mib"]),
            root_minimum_mib=int(raw["root_minimum_mib"]),
            root_headroom=float(raw["root_headroom"]),
            kernel_cmdline=raw["kernel_cmdline"],
            files=tuple(TreeFile(f["path"], int(f["mode"]), f["text"]) for f in raw["file"]),
            syslinux_cfg=raw["syslinux_cfg"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"image_debian_rt.toml: {exc!r}") from None


@dataclass(frozen=True)
class BuiltDisk:
    """The built image and what it is made of."""

    path: Path
    manifest: Path
    sha256: str
    size_bytes: int
    virtual_size_bytes: int
    kernel_release: str
    packages: dict[str, str]
    seconds: float
    reused: bool = False


def _check(proc: subprocess.CompletedProcess[str], what: str) -> str:
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise ImageError(f"{what} failed: {' | '.join(lines[-3:]) or proc.returncode}")
    return proc.stdout


def inputs_hash(text: str, mirror: str) -> str:
    return hashlib.sha256(f"{mirror}\n{text}".encode()).hexdigest()


def mmdebstrap_argv(spec: DebianRtSpec, root: Path, mirror: str) -> list[str]:
    argv = [
        "mmdebstrap",
        "--mode=root",
        f"--variant={spec.variant}",
        f"--include={','.join(spec.packages)}",
        "--aptopt=Acquire::Retries 3",
    ]
    argv += [f"--dpkgopt=path-exclude={p}" for p in spec.dpkg_excludes]
    argv += [f"--dpkgopt=path-include={p}" for p in spec.dpkg_includes]
    return [*argv, spec.suite, str(root), mirror]


def dpkg_versions(status: str) -> dict[str, str]:
    """Installed packages and versions from /var/lib/dpkg/status."""
    found: dict[str, str] = {}
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if "Package" in fields and fields.get("Status", "").endswith(" installed"):
            found[fields["Package"]] = fields.get("Version", "")
    return dict(sorted(found.items()))


def customize(spec: DebianRtSpec, root: Path) -> None:
    """Write the data's files, the hostname; remove what each server makes for itself."""
    for item in spec.files:
        target = root / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(item.text)
        target.chmod(item.mode)
    (root / "etc/hostname").write_text(f"{spec.hostname}\n")
    for pattern in spec.remove:
        for path in root.glob(pattern):
            path.unlink()
    machine_id = root / "etc/machine-id"
    if machine_id.exists():
        machine_id.write_text("")  # systemd makes one at first boot


def _one(root: Path, pattern: str, what: str) -> Path:
    found = sorted((root / "boot").glob(pattern))
    if len(found) != 1:
        raise ImageError(f"expected one {what} in {root / 'boot'}, found {len(found)}")
    return found[0]


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def _copy_into(out: BinaryIO, source: Path, offset: int) -> None:
    """Copy ``source`` into the open file at ``offset``, leaving zero blocks as holes."""
    zero = bytes(MIB)
    with source.open("rb") as data:
        position = offset
        while chunk := data.read(MIB):
            if chunk != zero[: len(chunk)]:
                out.seek(position)
                out.write(chunk)
            position += len(chunk)


def _boot_partition(
    spec: DebianRtSpec,
    scratch: Path,
    kernel: Path,
    initrd: Path,
    volume: str,
    run: Runner,
    env: dict[str, str],
) -> Path:
    """A FAT file that syslinux boots: its config, the kernel and the initrd."""
    boot = scratch / "boot.fat"
    size_kib = str(spec.boot_partition_mib * 1024)
    argv = ["mkfs.fat", "-F", "16", "-n", spec.boot_label, "-i", volume, "--invariant"]
    _check(run([*argv, "-C", str(boot), size_kib], env), "mkfs.fat")
    _check(run(["syslinux", "--install", str(boot)], env), "syslinux --install")
    cfg = scratch / "syslinux.cfg"
    cfg.write_text(spec.syslinux_cfg.format(cmdline=spec.kernel_cmdline))
    for src, name in ((cfg, "syslinux.cfg"), (kernel, "vmlinuz"), (initrd, "initrd.img")):
        _check(run(["mcopy", "-i", str(boot), str(src), f"::{name}"], env), f"mcopy {name}")
    return boot


def _root_partition(
    spec: DebianRtSpec,
    scratch: Path,
    root: Path,
    fixed: uuid.UUID,
    run: Runner,
    env: dict[str, str],
) -> Path:
    """An ext4 file made from the tree, with room to spare."""
    size_mib = max(spec.root_minimum_mib, int(_tree_bytes(root) // MIB * spec.root_headroom))
    rootfs = scratch / "root.ext4"
    argv = ["mke2fs", "-q", "-t", "ext4", "-L", spec.root_label, "-U", str(fixed)]
    argv += ["-E", f"hash_seed={fixed}", "-d", str(root), str(rootfs), f"{size_mib}M"]
    _check(run(argv, env), "mke2fs -d")
    return rootfs


def _lay_out(scratch: Path, boot: Path, rootfs: Path, signature: int) -> tuple[Path, int]:
    """The raw disk: MBR, the boot partition at 1 MiB, the root partition after it."""
    raw = scratch / "disk.raw"
    parts = [
        Partition(MIB, boot.stat().st_size, TYPE_FAT16_LBA, active=True),
        Partition(MIB + boot.stat().st_size, rootfs.stat().st_size, TYPE_LINUX),
    ]
    total = parts[1].start + parts[1].size
    with raw.open("wb") as out:
        out.truncate(total)
        out.write(master_boot_record(MBR_CODE.read_bytes(), signature, parts))
        _copy_into(out, boot, parts[0].start)
        _copy_into(out, rootfs, parts[1].start)
    return raw, total


def build_debian_rt(
    output: Path = DEFAULT_OUTPUT,
    work: Path = DEFAULT_WORK,
    *,
    mirror: str | None = None,
    rebuild: bool = False,
    run: Runner = _run,
    say: Callable[[str], None] = lambda _: None,
) -> BuiltDisk:
    """Build (or reuse) the image in ``output``; ImageError saying which step failed."""
    text = shipped_text("image_debian_rt.toml")
    spec = load_spec(text)
    source = mirror or spec.mirror
    wanted = inputs_hash(text, source)
    disk = output / DISK_NAME
    manifest = output / "manifest.json"
    if not rebuild and disk.is_file() and manifest.is_file():
        known = json.loads(manifest.read_text())
        if known.get("inputs") == wanted:
            return _from_manifest(disk, manifest, known, reused=True)
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise ImageError(
            f"building the Debian RT image needs {', '.join(missing)}: run `make setup` "
            "(scripts/apt-packages.txt lists the packages)"
        )
    if os.geteuid() != 0:
        raise ImageError("mmdebstrap --mode=root installs packages as root: run it as root")
    began = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    env = {"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "E2FSPROGS_FAKE_TIME": SOURCE_DATE_EPOCH}
    fixed = uuid.UUID(wanted[:32])
    scratch = Path(tempfile.mkdtemp(prefix="debian-rt-", dir=work))
    try:
        root = scratch / "root"
        say(f"installing {len(spec.packages)} packages and their dependencies from {source}")
        _check(run(mmdebstrap_argv(spec, root, source), env), "mmdebstrap")
        customize(spec, root)
        kernel = _one(root, "vmlinuz-*", "kernel")
        initrd = _one(root, "initrd.img-*", "initrd")
        release = kernel.name.removeprefix("vmlinuz-")
        packages = dpkg_versions((root / "var/lib/dpkg/status").read_text())

        say("making the boot partition (FAT, syslinux) and the root partition (ext4)")
        boot = _boot_partition(spec, scratch, kernel, initrd, wanted[:8], run, env)
        rootfs = _root_partition(spec, scratch, root, fixed, run, env)
        shutil.rmtree(root)
        say("laying out the disk and converting it to qcow2")
        raw, total = _lay_out(scratch, boot, rootfs, int(wanted[:8], 16))
        partial = output / f"{DISK_NAME}.part"
        _check(
            run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(partial)], env),
            "qemu-img convert",
        )
        partial.replace(disk)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    digest = hashlib.sha256()
    with disk.open("rb") as data:
        while piece := data.read(MIB):
            digest.update(piece)
    record = {
        "kind": "debian-rt",
        "inputs": wanted,
        "suite": spec.suite,
        "mirror": source,
        "kernel_release": release,
        "kernel_cmdline": spec.kernel_cmdline,
        "sha256": digest.hexdigest(),
        "size_bytes": disk.stat().st_size,
        "virtual_size_bytes": total,
        "packages": packages,
        "seconds": round(time.monotonic() - began, 1),
    }
    manifest.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return _from_manifest(disk, manifest, record, reused=False)


def _from_manifest(disk: Path, manifest: Path, known: dict[str, object], reused: bool) -> BuiltDisk:
    packages = known.get("packages")
    return BuiltDisk(
        path=disk,
        manifest=manifest,
        sha256=str(known["sha256"]),
        size_bytes=int(str(known["size_bytes"])),
        virtual_size_bytes=int(str(known["virtual_size_bytes"])),
        kernel_release=str(known["kernel_release"]),
        packages=dict(packages) if isinstance(packages, dict) else {},
        seconds=float(str(known["seconds"])),
        reused=reused,
    )
