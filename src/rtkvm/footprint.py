"""Everything rtkvm creates or changes on a host, in one place, and a registry of it.

The footprint is data: each :class:`HostPath` says where rtkvm writes, with
which mode, which command creates it and why; :data:`FOREIGN` lists the host
files rtkvm changes that belong to someone else (each restored by the
mechanism named there); :data:`OBJECTS` names the kinds of run-time objects
(daemons, switches, namespaces, all-in-one stacks, accounts, libvirt
directories and domains). Code that writes outside a checkout takes its path
from here and creates its directory with :meth:`Footprint.ensure_dir`; code
that starts or creates an object at run time records it with
:meth:`Footprint.register`, so that ``rtkvm host clean`` finds all of it.

This module must not stop, delete or undo anything (:mod:`rtkvm.hostclean`
does) and must not read or judge host state beyond its own registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rtkvm.errors import HostWriteError, InputError


@dataclass(frozen=True)
class HostPath:
    """A path rtkvm creates on a host; ``clean`` says what ``rtkvm host clean`` does with it."""

    path: str
    kind: Literal["dir", "file"]
    mode: int
    created_by: str
    why: str
    clean: Literal["remove", "remove_with_all"] = "remove"
    """remove: always; remove_with_all: only with ``--all`` (caches worth keeping)."""


STATE_DIR = HostPath(
    "/var/lib/rtkvm",
    "dir",
    0o755,
    "any rtkvm command that keeps state",
    "rtkvm's persistent state on this host; nothing in it is needed by another program",
)
GUEST_DIR = HostPath(
    "/var/lib/rtkvm/guests",
    "dir",
    0o755,
    "rtkvm guest create, rtkvm agent",
    "guests' serial logs: libvirt opens them as root and hands QEMU the descriptor, so "
    "root-owned 0755 serves whichever user qemu.conf gives QEMU",
)
IMAGE_DIR = HostPath(
    "/var/lib/rtkvm/image",
    "dir",
    0o755,
    "rtkvm image build",
    "the built guest image (kernel, initramfs): QEMU reads them",
)
IMAGE_STORE_DIR = HostPath(
    "/var/lib/rtkvm/images",
    "dir",
    0o700,
    "rtkvm cloud serve (the first image upload)",
    "the control plane's image store: one file per uploaded disk image, named by its id; "
    "tenants' data, so root only (agents fetch images through the API)",
)
BASE_IMAGE_DIR = HostPath(
    "/var/lib/rtkvm/guests/base",
    "dir",
    0o755,
    "rtkvm agent (a server with an image)",
    "images fetched from the API and checked by sha256, named by it: the read-only bases of "
    "the servers' copy-on-write disks (the overlays are beside the serial logs)",
)
ALLINONE_DIR = HostPath(
    "/var/lib/rtkvm/allinone",
    "dir",
    0o700,
    "rtkvm up",
    "the all-in-one's database, tokens and logs: secrets, so root only",
)
OPENSTACK_AIO_DIR = HostPath(
    "/var/lib/rtkvm/openstack",
    "dir",
    0o711,
    "rtkvm openstack up",
    "the OpenStack all-in-one: its PostgreSQL cluster (owned by postgres, hence 0711), "
    "RabbitMQ node, service configs with passwords (0700 inside), images, instances, logs",
)
OPENSTACK_NODE_DIR = HostPath(
    "/var/lib/rtkvm/openstack-node",
    "dir",
    0o700,
    "rtkvm openstack agent, rtkvm openstack waiver",
    "the node agent's OpenStack mode: the admin's RT waiver and the last verdict on each "
    "Nova guest (guests.json)",
)
TUNE_PERSISTENT_DIR = HostPath(
    "/var/lib/rtkvm/tune",
    "dir",
    0o700,
    "rtkvm host tune --apply",
    "the journal of tuned files that survive a reboot (boot loader, modprobe.d)",
)
DATABASE_FILE = HostPath(
    "/var/lib/rtkvm/rtkvm.db",
    "file",
    0o600,
    "rtkvm cloud serve (SQLite default)",
    "the control plane's database when RTKVM_DATABASE_URL is not given",
)
PERSISTENT_REGISTRY_DIR = HostPath(
    "/var/lib/rtkvm/registry",
    "dir",
    0o700,
    "rtkvm runtime up",
    "what rtkvm created that outlives a reboot and is not under /var/lib/rtkvm "
    "(accounts, libvirt's directories, the original qemu.conf)",
)
CACHE_DIR = HostPath(
    "/var/cache/rtkvm",
    "dir",
    0o755,
    "rtkvm image build, the KVM boot probe",
    "downloads and probe answers that can be made again",
    clean="remove_with_all",
)
IMAGE_CACHE_DIR = HostPath(
    "/var/cache/rtkvm/image",
    "dir",
    0o755,
    "rtkvm image build",
    "the Debian packages the guest image is built from",
    clean="remove_with_all",
)
KVM_PROBE_FILE = HostPath(
    "/var/cache/rtkvm/kvm-probe.json",
    "file",
    0o644,
    "guest boots with --accel auto",
    "whether a Linux guest boots under KVM here",
    clean="remove_with_all",
)
OPENSTACK_VENV_DIR = HostPath(
    "/var/cache/rtkvm/openstack",
    "dir",
    0o755,
    "rtkvm openstack up, benchmarks/scheduler.py --placement, the OpenStack tests",
    "virtualenvs of OpenStack services installed from PyPI at the pinned versions",
    clean="remove_with_all",
)
RUN_DIR = HostPath(
    "/run/rtkvm",
    "dir",
    0o755,
    "any rtkvm command that keeps run-time state",
    "run-time state: gone with a reboot, like the kernel state and processes it describes",
)
TUNE_VOLATILE_DIR = HostPath(
    "/run/rtkvm/tune",
    "dir",
    0o700,
    "rtkvm host tune --apply",
    "the journal of kernel settings (sysfs, procfs, cgroups, threads)",
)
SWITCH_RUNDIR = HostPath(
    "/run/rtkvm/ovs",
    "dir",
    0o750,
    "rtkvm net up (default run directory)",
    "OVS-DPDK's database, sockets, pid files and rtkvm's saved switch layout",
)
VHOST_SOCKET_DIR = HostPath(
    "/run/rtkvm/vhost",
    "dir",
    0o750,
    "rtkvm net up",
    "vhost-user sockets that QEMU serves and OVS connects to",
)
LIBVIRTD_HUGETLBFS_FILE = HostPath(
    "/run/rtkvm/libvirtd-hugetlbfs.json",
    "file",
    0o644,
    "rtkvm runtime up, rtkvm openstack up (when they start libvirtd)",
    "the hugetlbfs mounts libvirtd found when it started (it looks only then)",
)
REGISTRY_DIR = HostPath(
    "/run/rtkvm/registry",
    "dir",
    0o700,
    "rtkvm up, rtkvm net up, rtkvm net peer add, rtkvm runtime up",
    "the run-time objects rtkvm started, for rtkvm host clean",
)
TMP_PREFIX = "/tmp/rtkvm-"
"""Temporary directories and files of rtkvm's runs and tests (sockperf CSVs, test clusters)."""

PATHS: tuple[HostPath, ...] = (
    STATE_DIR,
    GUEST_DIR,
    IMAGE_DIR,
    IMAGE_STORE_DIR,
    BASE_IMAGE_DIR,
    ALLINONE_DIR,
    OPENSTACK_AIO_DIR,
    OPENSTACK_NODE_DIR,
    TUNE_PERSISTENT_DIR,
    DATABASE_FILE,
    PERSISTENT_REGISTRY_DIR,
    CACHE_DIR,
    IMAGE_CACHE_DIR,
    KVM_PROBE_FILE,
    OPENSTACK_VENV_DIR,
    RUN_DIR,
    TUNE_VOLATILE_DIR,
    SWITCH_RUNDIR,
    VHOST_SOCKET_DIR,
    LIBVIRTD_HUGETLBFS_FILE,
    REGISTRY_DIR,
)


@dataclass(frozen=True)
class Foreign:
    """A host file or setting rtkvm changes that is not its own; how it comes back."""

    what: str
    changed_by: str
    restored_by: str


FOREIGN: tuple[Foreign, ...] = (
    Foreign(
        "/etc/nova/nova.conf.d/50-rtkvm.conf (nova-compute's RT options; nova.conf untouched)",
        "rtkvm openstack nova-conf",
        "rtkvm openstack nova-conf --remove (the drop-in is rtkvm's alone)",
    ),
    Foreign(
        "/etc/libvirt/qemu.conf",
        "rtkvm runtime up",
        "rtkvm host clean: the original, kept in the persistent registry before the first write",
    ),
    Foreign(
        "/etc/modprobe.d/rtkvm.conf, /etc/default/grub, /etc/default/irqbalance",
        "rtkvm host tune --apply",
        "rtkvm host rollback (rtkvm host clean runs it)",
    ),
    Foreign(
        "sysctls, sysfs files, IRQ affinities, cgroups, kernel-thread policies",
        "rtkvm host tune --apply",
        "rtkvm host rollback (rtkvm host clean runs it)",
    ),
    Foreign(
        "/proc/sys/vm/nr_hugepages and per-node hugepages, hugetlbfs mounts",
        "rtkvm net up",
        "rtkvm net down (rtkvm host clean runs it per registered switch)",
    ),
    Foreign(
        "/etc/systemd/system/rtkvm-{switch,agent,api}.service (only on hosts with systemd)",
        "rtkvm host units --write",
        "rtkvm host units --remove (a unit file rtkvm did not write is never touched)",
    ),
    Foreign(
        "libvirt domains rtkvm defined (named rtkvm-*, or booting rtkvm's image)",
        "rtkvm guest create, rtkvm agent",
        "rtkvm guest delete, rtkvm host clean",
    ),
)

READS: tuple[str, ...] = (
    "/etc/passwd",
    "/etc/group",
    "/etc/sysconfig/irqbalance",
    "/run/systemd/system",
    "/etc/rtkvm",
    "/var/run/libvirt",
    "/var/run/virtlogd.pid",
    "/var/run/libvirtd.pid",
    "/var/log/libvirt/libvirtd.log",
)
"""Host paths rtkvm reads and never writes (the operator's, or libvirt's own)."""

ObjectKind = Literal[
    "allinone",
    "openstack",
    "switch",
    "netns_peer",
    "daemon",
    "account",
    "directory",
    "original_file",
]


@dataclass(frozen=True)
class ObjectKindInfo:
    kind: ObjectKind
    persistent: bool
    """True: recorded under /var/lib (outlives a reboot); False: under /run."""
    why: str


OBJECTS: dict[ObjectKind, ObjectKindInfo] = {
    info.kind: info
    for info in (
        ObjectKindInfo("allinone", False, "an rtkvm up stack (API and agent processes)"),
        ObjectKindInfo(
            "openstack",
            False,
            "an rtkvm openstack up stack (PostgreSQL, RabbitMQ, OpenStack services, Nova guests)",
        ),
        ObjectKindInfo("switch", False, "an rtkvm net up switch (OVS-DPDK processes, hugepages)"),
        ObjectKindInfo("netns_peer", False, "an rtkvm net peer (a namespace behind a veth)"),
        ObjectKindInfo("daemon", False, "virtlogd or libvirtd started by rtkvm runtime up"),
        ObjectKindInfo("account", True, "a user or group rtkvm runtime up created"),
        ObjectKindInfo("directory", True, "a libvirt directory rtkvm runtime up created"),
        ObjectKindInfo("original_file", True, "a file's content before rtkvm first changed it"),
    )
}


def _key(name: str) -> str:
    """A file name for any identifier (a path, a name): readable prefix + digest."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip("/"))[:40]
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


class Footprint:
    """rtkvm's paths and registry under a root (``/`` for the real host, a tree in tests)."""

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        self.root = Path(root)

    def local(self, item: HostPath | str) -> Path:
        """The path under this root of a footprint path or any host path."""
        host = item.path if isinstance(item, HostPath) else item
        return self.root / host.lstrip("/")

    def ensure_dir(self, item: HostPath) -> Path:
        """Create the directory (and its parents) with the item's mode; returns its path."""
        if item.kind != "dir":
            raise InputError(f"{item.path} is a file in the footprint, not a directory")
        target = self.local(item)
        try:
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(item.mode)
        except OSError as exc:
            raise HostWriteError(str(target), exc.strerror or str(exc)) from None
        return target

    @staticmethod
    def _base(kind: ObjectKind) -> HostPath:
        return PERSISTENT_REGISTRY_DIR if OBJECTS[kind].persistent else REGISTRY_DIR

    def _registry(self, kind: ObjectKind) -> Path:
        return self.local(self._base(kind)) / kind

    def register(self, kind: ObjectKind, name: str, **data: Any) -> None:
        """Record a run-time object (idempotent: the newest data wins)."""
        self.ensure_dir(self._base(kind))
        directory = self._registry(kind)
        directory.mkdir(mode=0o700, exist_ok=True)
        record = directory / f"{_key(name)}.json"
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"name": name, **data}, sort_keys=True))
        tmp.replace(record)

    def unregister(self, kind: ObjectKind, name: str) -> None:
        """Forget a run-time object (no error when it was not recorded)."""
        with contextlib.suppress(FileNotFoundError):
            (self._registry(kind) / f"{_key(name)}.json").unlink()

    def registered(self, kind: ObjectKind) -> list[dict[str, Any]]:
        """Every record of a kind, oldest first; a damaged record is returned as its name only."""
        directory = self._registry(kind)
        if not directory.is_dir():
            return []
        records = []
        for path in sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {"name": path.stem, "damaged": True}
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                records.append(data)
        return records

    def lookup(self, kind: ObjectKind, name: str) -> dict[str, Any] | None:
        """The record of one object, or None."""
        try:
            data = json.loads((self._registry(kind) / f"{_key(name)}.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None
