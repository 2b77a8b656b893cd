"""Build the PREEMPT_RT guest image from Debian packages, cached and reproducible.

Steps: ``apt-get download`` the packages of image.toml into a cache (skipped
for packages already there), ``dpkg -x`` them into a scratch directory, then
assemble an initramfs (busybox, cyclictest and its libraries, the virtio
modules, /init) with the deterministic cpio writer and gzip with mtime 0, and
copy the kernel. Output: ``vmlinuz``, ``initramfs.cpio.gz`` and
``manifest.json`` (package versions, sha256) in the output directory. The
same cached packages give the same bytes. This module must not start guests
or decide how they are configured.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rtkvm.errors import DataError, ImageError
from rtkvm.footprint import IMAGE_CACHE_DIR, IMAGE_DIR
from rtkvm.image.cpio import Entry, write_newc
from rtkvm.shipped import parse_toml, shipped_text

DEFAULT_CACHE = Path(IMAGE_CACHE_DIR.path)
DEFAULT_OUTPUT = Path(IMAGE_DIR.path)

Runner = Callable[[Sequence[str], Path], "subprocess.CompletedProcess[str]"]


def run_in(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real runner: run a command in a directory, capture output, never raise."""
    return subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, check=False, timeout=600
    )


@dataclass(frozen=True)
class FileSpec:
    src: str
    dst: str
    mode: int


@dataclass(frozen=True)
class ImageSpec:
    kernel_metapackage: str
    packages: tuple[str, ...]
    files: tuple[FileSpec, ...]
    modules: tuple[str, ...]
    init: str
    rtt_histogram_awk: str = ""
    """/etc/rtkvm/rtthist.awk: what /init prints a sockperf full log with (rtkvm.rttlog=hist)."""


@dataclass(frozen=True)
class BuiltImage:
    """Where the image is and what it is made of."""

    kernel: Path
    initramfs: Path
    manifest: Path
    kernel_release: str
    initramfs_sha256: str
    kernel_sha256: str
    packages: dict[str, str]
    seconds: float
    downloaded: tuple[str, ...]
    reused: bool = False
    """True when the output already held this exact build (same inputs) and was kept."""


def load_image_spec(text: str | None = None) -> ImageSpec:
    """Parse image.toml (the shipped one by default)."""
    if text is None:
        text = shipped_text("image.toml")
    raw = parse_toml(text, "image.toml")
    try:
        return ImageSpec(
            kernel_metapackage=raw["kernel_metapackage"],
            packages=tuple(p["name"] for p in raw["package"]),
            files=tuple(FileSpec(f["src"], f["dst"], f["mode"]) for f in raw["file"]),
            modules=tuple(raw["modules"]),
            init=raw["init"],
            rtt_histogram_awk=raw["rtt_histogram_awk"],
        )
    except (KeyError, TypeError) as exc:
        raise DataError(f"image.toml: {exc!r}") from None


def _check(proc: subprocess.CompletedProcess[str], what: str) -> str:
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise ImageError(f"{what} failed: {lines[-1] if lines else proc.returncode}")
    return proc.stdout


def cached_deb(debs: Path, package: str) -> Path | None:
    """The newest cached .deb of a package (apt names them NAME_VERSION_ARCH.deb)."""
    found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def fetch(debs: Path, package: str, run: Runner, downloaded: list[str]) -> Path:
    """A package's .deb from the cache, downloading it with apt-get if absent."""
    deb = cached_deb(debs, package)
    if deb is None:
        _check(run(["apt-get", "download", "-q", package], debs), f"apt-get download {package}")
        downloaded.append(package)
        deb = cached_deb(debs, package)
        if deb is None:
            raise ImageError(f"apt-get download {package} left no {package}_*.deb in {debs}")
    return deb


def deb_field(deb: Path, field: str, run: Runner) -> str:
    return _check(
        run(["dpkg-deb", "-f", str(deb), field], deb.parent), f"dpkg-deb -f {deb}"
    ).strip()


def kernel_package(depends: str, metapackage: str) -> str:
    """The versioned image package named in the metapackage's Depends."""
    for item in depends.split(","):
        name = item.strip().split(" ", 1)[0]
        if name.startswith("linux-image-") and name != metapackage:
            return name
    raise ImageError(f"{metapackage} depends on no linux-image-* package: {depends!r}")


def assemble(spec: ImageSpec, tree: Path, kernel_release: str) -> list[Entry]:
    """The initramfs members from an unpacked package tree."""
    entries = [
        Entry.file("init", spec.init.encode(), 0o755),
        Entry.file("etc/rtkvm/modules", ("\n".join(spec.modules) + "\n").encode()),
        Entry.file("etc/rtkvm/rtthist.awk", spec.rtt_histogram_awk.lstrip().encode()),
        Entry.symlink("bin/sh", "busybox"),
        Entry.chardev("dev/console", 5, 1),
        Entry.chardev("dev/null", 1, 3, 0o666),
    ]
    entries += [Entry.directory(d) for d in ("proc", "sys", "tmp", "root")]
    for f in spec.files:
        src = tree / f.src
        if not src.exists():
            raise ImageError(f"{f.src} is not in the unpacked packages (image.toml out of date?)")
        entries.append(Entry.file(f.dst, src.read_bytes(), f.mode))  # follows symlinks
    moddir = tree / "lib" / "modules" / kernel_release
    for module in spec.modules:
        src = moddir / module
        if not src.is_file():
            raise ImageError(f"module {module} is not in {moddir}")
        entries.append(Entry.file(f"lib/modules/{kernel_release}/{module}", src.read_bytes()))
    return entries


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH if set (reproducible-builds convention), else 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not value.isdigit():
        raise ImageError(f"SOURCE_DATE_EPOCH must be a number of seconds, not {value!r}")
    return int(value)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_image(
    cache: Path = DEFAULT_CACHE,
    output: Path = DEFAULT_OUTPUT,
    *,
    spec: ImageSpec | None = None,
    run: Runner = run_in,
    refresh: bool = False,
    rebuild: bool = False,
) -> BuiltImage:
    """Build the guest image into ``output``; kept as is when its inputs did not change.

    ``refresh`` downloads the packages again; ``rebuild`` assembles again even
    when the output was built from the same inputs.
    """
    started = time.monotonic()
    spec = spec or load_image_spec()
    debs = cache / "debs"
    if refresh and debs.exists():
        shutil.rmtree(debs)
    debs.mkdir(parents=True, exist_ok=True)
    downloaded: list[str] = []
    meta = fetch(debs, spec.kernel_metapackage, run, downloaded)
    image_pkg = kernel_package(deb_field(meta, "Depends", run), spec.kernel_metapackage)
    names = [spec.kernel_metapackage, image_pkg, *spec.packages]
    pkgs = {name: fetch(debs, name, run, downloaded) for name in names}
    versions = {name: deb_field(deb, "Version", run) for name, deb in pkgs.items()}
    kernel_release = image_pkg.removeprefix("linux-image-")
    mtime = source_date_epoch()
    inputs = inputs_key(spec, [pkgs[n] for n in names], mtime)
    if not rebuild:
        kept = _reuse(output, inputs, versions, kernel_release, started, downloaded)
        if kept is not None:
            return kept
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rtkvm-image-") as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        for name in names[1:]:
            _check(run(["dpkg-deb", "-x", str(pkgs[name]), str(tree)], tree), f"unpack {name}")
        kernel_src = tree / "boot" / f"vmlinuz-{kernel_release}"
        if not kernel_src.is_file():
            raise ImageError(f"{image_pkg} has no /boot/vmlinuz-{kernel_release}")
        entries = assemble(spec, tree, kernel_release)
        archive = write_newc(entries, mtime)
        kernel = _replace(output / "vmlinuz", kernel_src.read_bytes())
    initramfs = _replace(output / "initramfs.cpio.gz", gzip.compress(archive, 9, mtime=0))
    built = BuiltImage(
        kernel=kernel,
        initramfs=initramfs,
        manifest=output / "manifest.json",
        kernel_release=kernel_release,
        initramfs_sha256=sha256(initramfs),
        kernel_sha256=sha256(kernel),
        packages=versions,
        seconds=round(time.monotonic() - started, 2),
        downloaded=tuple(downloaded),
    )
    manifest = {
        "kernel_release": kernel_release,
        "kernel": {"path": str(kernel), "sha256": built.kernel_sha256},
        "initramfs": {"path": str(initramfs), "sha256": built.initramfs_sha256},
        "packages": versions,
        "source_date_epoch": mtime,
        "inputs": inputs,
    }
    _replace(built.manifest, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return built


def inputs_key(spec: ImageSpec, debs: list[Path], mtime: int) -> str:
    """sha256 over everything a build depends on: the spec, the .deb files, the mtime."""
    digest = hashlib.sha256(repr(spec).encode())
    for deb in debs:
        digest.update(deb.name.encode())
        digest.update(sha256(deb).encode())
    digest.update(str(mtime).encode())
    return digest.hexdigest()


def _reuse(
    output: Path,
    inputs: str,
    versions: dict[str, str],
    kernel_release: str,
    started: float,
    downloaded: list[str],
) -> BuiltImage | None:
    """The existing build in ``output`` if it came from the same inputs and is intact."""
    try:
        manifest = json.loads((output / "manifest.json").read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict) or manifest.get("inputs") != inputs:
        return None
    kernel, initramfs = output / "vmlinuz", output / "initramfs.cpio.gz"
    if not (kernel.is_file() and initramfs.is_file()):
        return None
    kernel_sha, initramfs_sha = sha256(kernel), sha256(initramfs)
    if (kernel_sha, initramfs_sha) != (
        manifest["kernel"]["sha256"],
        manifest["initramfs"]["sha256"],
    ):
        return None  # modified since it was built: build again
    return BuiltImage(
        kernel=kernel,
        initramfs=initramfs,
        manifest=output / "manifest.json",
        kernel_release=kernel_release,
        initramfs_sha256=initramfs_sha,
        kernel_sha256=kernel_sha,
        packages=versions,
        seconds=round(time.monotonic() - started, 2),
        downloaded=tuple(downloaded),
        reused=True,
    )


def load_manifest(output: Path = DEFAULT_OUTPUT) -> dict[str, object]:
    """The manifest of a built image; ImageError says to build it if absent."""
    path = output / "manifest.json"
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ImageError(f"no guest image in {output}: run 'rtkvm image build' first") from None
    except json.JSONDecodeError as exc:
        raise ImageError(f"{path} is corrupt ({exc}): run 'rtkvm image build' again") from None
    if not isinstance(data, dict):
        raise ImageError(f"{path} is not a manifest: run 'rtkvm image build' again")
    return data


def _replace(path: Path, data: bytes) -> Path:
    """Write atomically (temp file and rename), so a guest never boots a half file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
