"""The real host's side of ``rtkvm host clean``: processes, libvirt, namespaces, accounts.

Each method undoes one kind of object through the code that made it (the
all-in-one's stop, the switch's stop, the namespace peer's delete, the
tuning rollback, libvirt's undefine), and returns what it could not do.
With libvirtd down, rtkvm's persistent domains are removed from libvirt's
configuration directory (they carry rtkvm's metadata namespace), so that a
later libvirtd does not bring them back. This module must not decide what
to clean (:mod:`rtkvm.hostclean` plans it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from rtkvm.errors import RtkvmError
from rtkvm.hostfs import HostFS
from rtkvm.tune.journal import Journal

LIBVIRT_DOMAIN_DIR = Path("/etc/libvirt/qemu")


def _run(argv: list[str]) -> list[str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"{' '.join(argv)}: {exc}"]
    if done.returncode != 0:
        return [f"{' '.join(argv)}: {(done.stderr or done.stdout).strip() or done.returncode}"]
    return []


class RealCleanSeams:
    """Acts on this machine (root ``/``)."""

    def __init__(self) -> None:
        self.fs = HostFS("/", writable=True)

    def stop_allinone(self, state_dir: str) -> list[str]:
        from rtkvm.allinone.stack import AllInOne
        from rtkvm.allinone.state import StateDir

        if not Path(state_dir).is_dir():
            return []  # its processes cannot be proven ours without their pid files
        stack = AllInOne(StateDir(Path(state_dir)), fs=self.fs)
        try:
            stack.down()
        except RtkvmError as exc:
            return [str(exc)]
        left = [p.name for p in (stack.api, stack.agent) if p.pid() is not None]
        return [f"{', '.join(left)} still running"] if left else []

    def stop_openstack(self, root: str) -> list[str]:
        from rtkvm.openstack.aio import nova_guests
        from rtkvm.openstack.aio.layout import StackLayout
        from rtkvm.openstack.aio.stack import OpenStackAio

        if not Path(root).is_dir():
            return []  # its processes cannot be proven ours without their pid files
        stack = OpenStackAio(StackLayout(Path(root)), fs=HostFS(self.fs.root, writable=True))
        problems = []
        try:
            nova_guests.destroy(stack.layout.instances)
            stack.down()
        except (RtkvmError, OSError) as exc:
            problems.append(str(exc))
        left = [s.name for s in stack.status() if s.pid is not None]
        return problems + ([f"{', '.join(left)} still running"] if left else [])

    def _libvirtd_up(self) -> bool:
        from rtkvm.runtime.libvirtd import DAEMONS, daemon_pid

        return daemon_pid(self.fs, DAEMONS[1]) is not None

    def rtkvm_domains(self) -> list[str]:
        from rtkvm.guest import lifecycle

        if self._libvirtd_up():
            try:
                with lifecycle.connect() as conn:
                    return sorted(
                        str(d.name()) for d in conn.listAllDomains(0) if lifecycle.is_rtkvm(d)
                    )
            except RtkvmError:
                pass  # not answering: fall back to its configuration files
        if not LIBVIRT_DOMAIN_DIR.is_dir():
            return []
        return sorted(
            f.stem
            for f in LIBVIRT_DOMAIN_DIR.glob("*.xml")
            if lifecycle.META_NS in f.read_text(errors="replace")
        )

    def delete_domain(self, name: str) -> list[str]:
        from rtkvm.guest import lifecycle

        if self._libvirtd_up():
            try:
                with lifecycle.connect() as conn:
                    lifecycle.delete(conn, name)
            except RtkvmError as exc:
                return [str(exc)]
            return []
        problems = []
        for path in (
            LIBVIRT_DOMAIN_DIR / f"{name}.xml",
            LIBVIRT_DOMAIN_DIR / "autostart" / f"{name}.xml",
        ):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                problems.append(f"cannot remove {path}: {exc.strerror}")
        return problems

    def stop_switch(self, rundir: str) -> list[str]:
        from rtkvm.dataplane.ovs import OvsDpdk
        from rtkvm.dataplane.settings import load_settings

        if not Path(rundir).is_dir():
            return []
        return OvsDpdk(load_settings(), Path(rundir), self.fs).stop()

    def delete_peer(self, netns: str, uplink: str) -> list[str]:
        from rtkvm.net.netns import NetnsPeer

        return NetnsPeer(netns, uplink, "").delete()

    def _journal(self) -> Journal:
        return Journal(self.fs)

    def tuning_entries(self) -> int:
        return len(self._journal().entries())

    def rollback_tuning(self) -> list[str]:
        from rtkvm.tune.engine import rollback
        from rtkvm.tune.system import RealProcessControl, SubprocessRunner

        result = rollback(self.fs, self._journal(), RealProcessControl(self.fs), SubprocessRunner())
        return result.failed

    def stop_daemon(self, name: str, pidfile: str) -> list[str]:
        from rtkvm.runtime.libvirtd import DAEMONS, stop_daemon

        daemon = next((d for d in DAEMONS if d.name == name), None)
        if daemon is None:
            return [f"unknown daemon {name!r} in the registry"]
        try:
            stop_daemon(self.fs, daemon)
        except RtkvmError as exc:
            return [str(exc)]
        return []

    def delete_account(self, kind: str, name: str) -> list[str]:
        if kind not in ("user", "group"):
            return [f"unknown account kind {kind!r}"]
        database = "passwd" if kind == "user" else "group"
        if _run(["getent", database, name]):
            return []  # already gone (userdel also removes the user's own group)
        return _run(["userdel" if kind == "user" else "groupdel", name])

    def stop_postgres(self, cluster_dir: str) -> list[str]:
        pid_file = Path(cluster_dir) / "data" / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []  # not running
        try:
            os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
        except ProcessLookupError:
            return []
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        return [f"PostgreSQL (pid {pid}) did not stop"] if Path(f"/proc/{pid}").exists() else []
