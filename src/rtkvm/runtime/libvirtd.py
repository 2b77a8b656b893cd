"""Bring libvirtd and virtlogd up on a machine without systemd, idempotently.

``runtime_up`` creates the users, groups and directories from runtime.toml,
writes qemu.conf (with the settings that the detected quirks call for),
starts virtlogd and libvirtd unless they already run, restarts libvirtd when
qemu.conf changed and no domain is running, and waits for its socket.
libvirtd looks for hugetlbfs mounts only when it starts (a guest on hugepages
then fails with "hugetlbfs filesystem is not mounted"): when rtkvm starts it,
the mounts it found are recorded, and a mount made later (by ``rtkvm net up``
or ``rtkvm openstack up``) restarts it, again only with no domain running.
``runtime_status`` says the same without changing anything. All host paths
are under a root given as a parameter; processes are run through an
injectable runner. This module must not install packages (scripts/setup.sh
does) nor decide guest policy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rtkvm.dataplane.quirks import hugetlbfs_mounts
from rtkvm.errors import RuntimeSetupError
from rtkvm.findings import Finding, Severity, Status
from rtkvm.footprint import LIBVIRTD_HUGETLBFS_FILE, Footprint
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.runtime.config import RuntimeData, load_runtime_data, render_qemu_conf

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]
Killer = Callable[[int, int], None]
"""Sends a signal to a pid (os.kill); a seam so that tests never signal a real process."""


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """The real runner: run a command, capture its output, never raise on exit status."""
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)


@dataclass(frozen=True)
class Daemon:
    name: str
    argv: tuple[str, ...]
    pidfile: str
    why: str


DAEMONS = (
    Daemon(
        "virtlogd",
        ("virtlogd", "-d"),
        "/var/run/virtlogd.pid",
        "collects QEMU's stdout/stderr; libvirtd refuses to start guests without it",
    ),
    Daemon(
        "libvirtd",
        ("libvirtd", "-d"),
        "/var/run/libvirtd.pid",
        "the libvirt daemon serving qemu:///system",
    ),
)

LIBVIRT_SOCKET = "/var/run/libvirt/libvirt-sock"
QEMU_CONF = "/etc/libvirt/qemu.conf"
QEMU_PID_DIR = "/var/run/libvirt/qemu"
LIBVIRTD_LOG = "/var/log/libvirt/libvirtd.log"


@dataclass
class UpResult:
    """What runtime_up did, for people: each action and each warning."""

    actions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def daemon_pid(fs: HostFS, daemon: Daemon) -> int | None:
    """PID of a running daemon from its pidfile, checked against /proc/PID/comm."""
    text = fs.read_line(daemon.pidfile)
    if isinstance(text, Unknown) or not text.isdigit():
        return None
    comm = fs.read_line(f"/proc/{text}/comm")
    if isinstance(comm, Unknown) or not comm.startswith(daemon.name[:15]):
        return None
    return int(text)


DRIVER_LOCK = "driver.pid"
"""libvirt's QEMU driver lock in the same directory: it names libvirtd itself, not a domain."""


def running_domains(fs: HostFS) -> list[str]:
    """Names of QEMU domains with a live pid file (libvirt writes NAME.pid)."""
    names = []
    for entry in fs.glob_names(QEMU_PID_DIR, "*.pid"):
        if entry == DRIVER_LOCK:
            continue
        pid = fs.read_line(f"{QEMU_PID_DIR}/{entry}")
        if not isinstance(pid, Unknown) and pid.isdigit() and fs.exists(f"/proc/{pid}"):
            names.append(entry.removesuffix(".pid"))
    return names


def _known_names(fs: HostFS, path: str) -> set[str]:
    text = fs.read_maybe(path)
    if isinstance(text, Unknown):
        return set()
    return {line.split(":", 1)[0] for line in text.splitlines() if line}


def ensure_accounts(fs: HostFS, data: RuntimeData, run: Runner, result: UpResult) -> None:
    """Create missing groups and system users (groupadd/useradd)."""
    footprint = Footprint(fs.root)
    groups = _known_names(fs, "/etc/group")
    for g in data.groups:
        if g.name not in groups:
            _check(run(["groupadd", "--system", g.name]), f"groupadd {g.name}")
            footprint.register("account", f"group:{g.name}", type="group", account=g.name)
            result.actions.append(f"created group {g.name} ({g.why})")
    users = _known_names(fs, "/etc/passwd")
    for u in data.users:
        if u.name not in users:
            argv = ["useradd", "--system", "--no-create-home", "-g", u.group]
            _check(run([*argv, "-s", "/usr/sbin/nologin", u.name]), f"useradd {u.name}")
            footprint.register("account", f"user:{u.name}", type="user", account=u.name)
            result.actions.append(f"created user {u.name} ({u.why})")


def ensure_directories(fs: HostFS, data: RuntimeData, result: UpResult) -> None:
    footprint = Footprint(fs.root)
    for d in data.directories:
        created = fs.make_dirs(d.path)  # the directory and missing parents, outermost first
        for path in created:
            footprint.register("directory", path)
        if created:
            result.actions.append(f"created {d.path} ({d.why})")


def ensure_qemu_conf(fs: HostFS, data: RuntimeData, present: set[str], result: UpResult) -> bool:
    """Write qemu.conf if it differs from what it should be; True when it changed."""
    existing = fs.read_maybe(QEMU_CONF)
    old = "" if isinstance(existing, Unknown) else existing
    new = render_qemu_conf(old, data.settings_for(present))
    if new == old:
        return False
    footprint = Footprint(fs.root)
    if footprint.lookup("original_file", QEMU_CONF) is None:
        original = None if isinstance(existing, Unknown) else existing
        footprint.register("original_file", QEMU_CONF, content=original)
    fs.local(QEMU_CONF).parent.mkdir(parents=True, exist_ok=True)
    fs.write(QEMU_CONF, new)
    result.actions.append(f"wrote {QEMU_CONF} ({', '.join(sorted(present)) or 'no quirks'})")
    return True


def start_daemon(fs: HostFS, daemon: Daemon, run: Runner, result: UpResult) -> None:
    if daemon_pid(fs, daemon) is not None:
        return
    _check(run(list(daemon.argv)), daemon.name)
    Footprint(fs.root).register("daemon", daemon.name, pidfile=daemon.pidfile)
    result.actions.append(f"started {daemon.name} ({daemon.why})")


def stop_daemon(fs: HostFS, daemon: Daemon, timeout: float = 15.0, kill: Killer = os.kill) -> None:
    """SIGTERM the daemon named by its pidfile and wait for it to exit."""
    pid = daemon_pid(fs, daemon)
    if pid is None:
        return
    kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while fs.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    if fs.exists(f"/proc/{pid}"):
        raise RuntimeSetupError(f"{daemon.name} (pid {pid}) did not exit after SIGTERM")


def wait_for_libvirtd(fs: HostFS, connect: Callable[[], None], timeout: float = 30.0) -> None:
    """Wait until libvirtd runs, has its socket and accepts a qemu:///system connection."""
    start = time.monotonic()
    last = "no socket yet"
    while time.monotonic() < start + timeout:
        if daemon_pid(fs, DAEMONS[1]) is None:
            last = "libvirtd is not running"
            if time.monotonic() > start + 3:
                break
        elif fs.exists(LIBVIRT_SOCKET):
            try:
                connect()
                return
            except Exception as exc:  # libvirt.libvirtError; any failure is retried
                last = str(exc).strip()
        time.sleep(0.2)
    raise RuntimeSetupError(
        f"libvirtd is not usable after {timeout:.0f}s ({last}); "
        f"see the end of {LIBVIRTD_LOG} or run 'libvirtd -v' in the foreground"
    )


def connect_qemu_system() -> None:
    """Open and close qemu:///system (raises libvirt.libvirtError when unusable)."""
    import libvirt  # the binding is only needed on hosts that run guests

    conn = libvirt.open("qemu:///system")
    conn.close()


def runtime_up(
    fs: HostFS,
    present_quirks: set[str],
    *,
    run: Runner = run_command,
    connect: Callable[[], None] = connect_qemu_system,
    kill: Killer = os.kill,
    data: RuntimeData | None = None,
) -> UpResult:
    """Make libvirtd usable for RT guests; safe to run again at any time."""
    data = data or load_runtime_data()
    result = UpResult()
    ensure_accounts(fs, data, run, result)
    ensure_directories(fs, data, result)
    changed = ensure_qemu_conf(fs, data, present_quirks, result)
    libvirtd = DAEMONS[1]
    if changed and daemon_pid(fs, libvirtd) is not None:
        busy = running_domains(fs)
        if busy:
            result.warnings.append(
                f"qemu.conf changed but domains run ({', '.join(busy)}): libvirtd not "
                "restarted; the change applies after 'rtkvm runtime up' with no guest running"
            )
        else:
            stop_daemon(fs, libvirtd, kill=kill)
            result.actions.append("stopped libvirtd to reload qemu.conf")
    started = daemon_pid(fs, libvirtd) is None
    for daemon in DAEMONS:
        start_daemon(fs, daemon, run, result)
    wait_for_libvirtd(fs, connect)
    if started:
        record_hugetlbfs_seen(fs)
    else:
        seen = ensure_hugetlbfs_seen(fs, run=run, connect=connect, kill=kill)
        result.actions += seen.actions
        result.warnings += seen.warnings
    return result


def record_hugetlbfs_seen(fs: HostFS) -> None:
    """Note the hugetlbfs mounts of now against the running libvirtd (call right after it
    started: those are the mounts it found)."""
    pid = daemon_pid(fs, DAEMONS[1])
    if pid is None:
        return
    record = {"pid": pid, "mounts": _hugetlbfs_now(fs)}
    fs.local(LIBVIRTD_HUGETLBFS_FILE.path).parent.mkdir(parents=True, exist_ok=True)
    fs.write(LIBVIRTD_HUGETLBFS_FILE.path, json.dumps(record) + "\n")


def _hugetlbfs_now(fs: HostFS) -> list[str]:
    mounts = fs.read_maybe("/proc/mounts")
    return [] if isinstance(mounts, Unknown) else hugetlbfs_mounts(mounts)


def hugetlbfs_unseen(fs: HostFS) -> list[str]:
    """hugetlbfs mounts the running libvirtd has not found (mounted after it started).

    Known only for a libvirtd that rtkvm started (the record names its pid); of one
    started by an init system, which mounts hugetlbfs first, nothing is said."""
    pid = daemon_pid(fs, DAEMONS[1])
    text = fs.read_maybe(LIBVIRTD_HUGETLBFS_FILE.path)
    if pid is None or isinstance(text, Unknown):
        return []
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return []
    if not isinstance(record, dict) or record.get("pid") != pid:
        return []
    seen = record.get("mounts")
    seen = seen if isinstance(seen, list) else []
    return [m for m in _hugetlbfs_now(fs) if m not in seen]


def ensure_hugetlbfs_seen(
    fs: HostFS,
    *,
    run: Runner = run_command,
    connect: Callable[[], None] = connect_qemu_system,
    kill: Killer = os.kill,
) -> UpResult:
    """Restart rtkvm's libvirtd if hugetlbfs was mounted after it started (refused, with a
    warning, while domains run)."""
    unseen = hugetlbfs_unseen(fs)
    if not unseen:
        return UpResult()
    why = f"hugetlbfs at {', '.join(unseen)} was mounted after it started"
    return restart_libvirtd(fs, why, run=run, connect=connect, kill=kill)


def restart_libvirtd(
    fs: HostFS,
    why: str,
    *,
    run: Runner = run_command,
    connect: Callable[[], None] = connect_qemu_system,
    kill: Killer = os.kill,
) -> UpResult:
    """Restart libvirtd so that it sees a host change (a new hugetlbfs mount); refused with a
    warning while domains run (their QEMU processes would lose their monitor)."""
    result = UpResult()
    libvirtd = DAEMONS[1]
    if daemon_pid(fs, libvirtd) is None:
        return result
    busy = running_domains(fs)
    if busy:
        result.warnings.append(
            f"libvirtd must restart ({why}) but domains run ({', '.join(busy)}): it was not "
            "restarted; run 'rtkvm runtime up' again with no guest running"
        )
        return result
    stop_daemon(fs, libvirtd, kill=kill)
    start_daemon(fs, libvirtd, run, result)
    wait_for_libvirtd(fs, connect)
    record_hugetlbfs_seen(fs)
    result.actions.append(f"restarted libvirtd ({why})")
    return result


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeSetupError(f"{what} failed: {detail[-1] if detail else proc.returncode}")


def runtime_findings(
    fs: HostFS, present_quirks: set[str], data: RuntimeData | None = None
) -> list[Finding]:
    """What ``runtime_up`` would change, as findings; changes nothing."""
    data = data or load_runtime_data()
    fix = "run 'rtkvm runtime up' as root"
    findings = []
    for daemon in DAEMONS:
        pid = daemon_pid(fs, daemon)
        findings.append(
            Finding(
                id=f"runtime.{daemon.name}",
                severity=Severity.ERROR,
                status=Status.PASS if pid is not None else Status.FAIL,
                message=f"{daemon.name} {'runs' if pid else 'is not running'} ({daemon.why})",
                observed=f"pid {pid}" if pid else "not running",
                expected="running",
                fix="" if pid else fix,
            )
        )
    existing = fs.read_maybe(QEMU_CONF)
    old = "" if isinstance(existing, Unknown) else existing
    current = render_qemu_conf(old, data.settings_for(present_quirks)) == old
    findings.append(
        Finding(
            id="runtime.qemu_conf",
            severity=Severity.ERROR,
            status=Status.PASS if current else Status.FAIL,
            message=f"{QEMU_CONF} {'has' if current else 'lacks'} the settings this host needs",
            observed="up to date" if current else "differs",
            expected="up to date",
            fix="" if current else fix,
        )
    )
    return findings
