"""OVS-DPDK under rtkvm's control: start, configure, plug, set PMD priority, stop.

Runs a private ovsdb-server and Debian's ovs-vswitchd-dpdk with every file in
one run directory rtkvm owns (database, sockets, pid files, logs), so it never
touches a system Open vSwitch. Start order: pre-flight, hugetlbfs, hugepages
per NUMA node, database, other_config, vswitchd started on the housekeeping
CPUs (DPDK's control threads inherit that), wait for DPDK, bridges. The state
needed to undo the host changes (hugepage counts, whether rtkvm mounted
hugetlbfs) is written to the run directory first, so ``stop`` from another
process puts the host back. ``stop`` never raises half-way: it does every step
and reports what failed. This module must not compute configuration: that
comes in as a SwitchLayout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane import hugepages
from rtkvm.dataplane.layout import (
    Bridge,
    SwitchLayout,
    VhostPort,
    bridge_args,
    other_config_args,
    port_args,
)
from rtkvm.dataplane.process import Runner, SubprocessRunner, start_with_affinity
from rtkvm.dataplane.quirks import diagnose_log, hugetlbfs_mounts, iova_mode, preflight
from rtkvm.dataplane.sched import KernelScheduler, Sweep, ThreadScheduler, sweep
from rtkvm.dataplane.settings import DataplaneSettings
from rtkvm.dataplane.threads import ThreadInfo, read_threads, split_pmds
from rtkvm.errors import DataplaneError
from rtkvm.findings import Severity, Status
from rtkvm.footprint import Footprint
from rtkvm.hostfs import HostFS, Unknown


@dataclass(frozen=True)
class StartInfo:
    seconds: float
    """Wall time from launching ovs-vswitchd to DPDK initialised."""
    iova_mode: str | None
    warnings: tuple[str, ...] = ()


def db_socket(rundir: Path) -> Path:
    """The ovsdb-server socket of the rtkvm-owned switch in ``rundir`` (its clients: rtkvm,
    Neutron's OVS agent, Nova's os-vif)."""
    return rundir / "db.sock"


@dataclass
class OvsDpdk:
    """One rtkvm-owned OVS-DPDK instance living in ``rundir``."""

    settings: DataplaneSettings
    rundir: Path
    fs: HostFS
    """Writable HostFS on the real root: hugepage pools, /proc threads."""
    runner: Runner = field(default_factory=SubprocessRunner)
    sched: ThreadScheduler = field(default_factory=KernelScheduler)

    # -- paths ---------------------------------------------------------------------

    @property
    def db_sock(self) -> Path:
        return db_socket(self.rundir)

    @property
    def vswitchd_ctl(self) -> Path:
        return self.rundir / "ovs-vswitchd.ctl"

    @property
    def vswitchd_log(self) -> Path:
        return self.rundir / "ovs-vswitchd.log"

    @property
    def state_file(self) -> Path:
        return self.rundir / "rtkvm-state.json"

    def _env(self) -> dict[str, str]:
        run = str(self.rundir)
        return {"OVS_RUNDIR": run, "OVS_DBDIR": run, "OVS_LOGDIR": run, "OVS_PKGDATADIR": run}

    def vsctl(self, *args: str, wait: bool = True, timeout: float = 20.0) -> str:
        base = [self.settings.binaries.ovs_vsctl, f"--db=unix:{self.db_sock}"]
        base.append(f"--timeout={int(timeout)}")
        if not wait:
            base.append("--no-wait")
        return self.runner.run([*base, *args], env=self._env(), timeout=timeout + 5)

    def appctl(self, target: str, *args: str, timeout: float = 10.0) -> str:
        ctl = str(self.rundir / f"{target}.ctl")
        cmd = [self.settings.binaries.ovs_appctl, "-t", ctl, f"--timeout={int(timeout)}", *args]
        return self.runner.run(cmd, env=self._env(), timeout=timeout + 5)

    def pid(self, daemon: str) -> int | None:
        """The pid of a running daemon of this instance, or None."""
        try:
            pid = int((self.rundir / f"{daemon}.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(self.fs, pid) else None

    # -- start -----------------------------------------------------------------------

    def start(self, layout: SwitchLayout) -> StartInfo:
        """Bring the switch up with ``layout``'s configuration and bridges."""
        report = preflight(self.fs, self.settings)
        blocking = [
            f
            for f in report.findings
            if f.severity is Severity.ERROR and f.status in (Status.FAIL, Status.UNKNOWN)
        ]
        if blocking:
            raise DataplaneError(
                "cannot start OVS-DPDK here: "
                + "; ".join(f"{f.message} (fix: {f.fix})" for f in blocking)
            )
        if self.pid("ovs-vswitchd") or self.pid("ovsdb-server"):
            raise DataplaneError(f"an rtkvm switch already runs from {self.rundir}; stop it first")
        try:
            return self._start(layout)
        except BaseException as exc:
            undone = self.stop()  # leave nothing behind: daemons, hugepages, mount
            if undone and isinstance(exc, DataplaneError):
                raise DataplaneError(f"{exc} (and cleaning up: {'; '.join(undone)})") from None
            raise

    def _start(self, layout: SwitchLayout) -> StartInfo:
        self.rundir.mkdir(parents=True, exist_ok=True, mode=0o750)
        Footprint(self.fs.root).register("switch", str(self.rundir.resolve()))
        Path(str(layout.socket_dir)).mkdir(parents=True, exist_ok=True, mode=0o750)
        state: dict[str, object] = {"mounted": None, "hugepages": None}
        mounts = hugetlbfs_mounts(self.fs.read("/proc/mounts"))
        if not mounts:
            point = self.settings.hugepage_mount
            Path(point).mkdir(parents=True, exist_ok=True)
            self.runner.run(["mount", "-t", "hugetlbfs", "nodev", point])
            state["mounted"] = point
        self._save(state)
        reservation = hugepages.reserve(self.fs, layout.hugepages, self.settings.hugepage_size_kb)
        self._save_reservation(state, reservation)

        db = self.rundir / "conf.db"
        db.unlink(missing_ok=True)
        b = self.settings.binaries
        self.runner.run([b.ovsdb_tool, "create", str(db), b.schema], env=self._env())
        start_with_affinity(
            [
                b.ovsdb_server,
                str(db),
                f"--remote=punix:{self.db_sock}",
                f"--pidfile={self.rundir / 'ovsdb-server.pid'}",
                f"--unixctl={self.rundir / 'ovsdb-server.ctl'}",
                f"--log-file={self.rundir / 'ovsdb-server.log'}",
                "--detach",
            ],
            layout.cpus.process,
            output=self.rundir / "ovsdb-server.out",
            env=self._env(),
        )
        self.vsctl("init", wait=False)
        self.vsctl(*other_config_args(layout.other_config), wait=False)
        began = self._start_vswitchd(layout, state, reservation)
        self._wait_dpdk(began)
        seconds = time.monotonic() - began
        for bridge in layout.bridges:
            self.add_bridge(bridge)
        log = self._log()
        problems = diagnose_log(log)
        if problems:
            raise DataplaneError("OVS-DPDK started but is not usable: " + "; ".join(problems))
        if any(b.uplink.devargs for b in layout.bridges):
            # the polled uplinks made the PMD threads: RT from now
            self.apply_pmd_sched(housekeeping=layout.cpus.process)
        return StartInfo(round(seconds, 3), iova_mode(log), layout.cpus.warnings)

    def _start_vswitchd(
        self,
        layout: SwitchLayout,
        state: dict[str, object],
        reservation: hugepages.Reservation,
        attempts: int = 3,
    ) -> float:
        """Launch ovs-vswitchd-dpdk on the housekeeping CPUs; returns the launch time.

        Free hugepages are a shared pool: a program that maps any free hugepage
        (PostgreSQL with huge_pages=try did, here) can take the pages reserved
        for DPDK before its EAL maps them, and the EAL then fails with "Cannot
        allocate memory". Before each attempt the pool is topped up to what the
        switch needs; a failure names the processes that hold hugepages.
        """
        b = self.settings.binaries
        args = [
            b.vswitchd,
            f"unix:{self.db_sock}",
            f"--pidfile={self.rundir / 'ovs-vswitchd.pid'}",
            f"--unixctl={self.vswitchd_ctl}",
            f"--log-file={self.vswitchd_log}",
            "--detach",
        ]
        for attempt in range(1, attempts + 1):
            reservation = hugepages.top_up(self.fs, reservation, layout.hugepages)
            self._save_reservation(state, reservation)
            began = time.monotonic()
            try:
                start_with_affinity(
                    args, layout.cpus.process, output=self.rundir / "ovs-vswitchd.out",
                    env=self._env(),
                )  # fmt: skip
                return began
            except DataplaneError as exc:
                if "Cannot init EAL" not in str(exc) or attempt == attempts:
                    holders = ", ".join(hugepages.users(self.fs)) or "none"
                    raise DataplaneError(
                        f"{exc} [{self._hugepage_counters()}; processes holding hugepages: "
                        f"{holders}]"
                    ) from None
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def _save_reservation(self, state: dict[str, object], res: hugepages.Reservation) -> None:
        state["hugepages"] = {
            "size_kb": res.size_kb,
            "original": {str(k): v for k, v in res.original.items()},
            "added": {str(k): v for k, v in res.added.items()},
        }
        self._save(state)

    def _hugepage_counters(self) -> str:
        meminfo = self.fs.read_maybe("/proc/meminfo")
        if isinstance(meminfo, Unknown):
            return str(meminfo)
        return ", ".join(
            line.replace(" ", "") for line in meminfo.splitlines() if line.startswith("HugePages_")
        )

    def _wait_hugepages_released(self, limit: float = 5.0) -> None:
        """Exited DPDK processes free their pages asynchronously; restore after that."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            counters = dict(
                item.split(":") for item in self._hugepage_counters().split(", ") if ":" in item
            )
            if counters.get("HugePages_Free") == counters.get("HugePages_Total"):
                return
            time.sleep(0.1)

    def _wait_dpdk(self, began: float, limit: float = 60.0) -> None:
        while time.monotonic() - began < limit:
            if self.pid("ovs-vswitchd") is None and time.monotonic() - began > 2:
                break
            try:
                value = self.vsctl("get", "Open_vSwitch", ".", "dpdk_initialized", wait=False)
            except DataplaneError:
                value = ""
            if value.strip() == "true":
                return
            time.sleep(0.2)
        problems = diagnose_log(self._log()) or ["see " + str(self.vswitchd_log)]
        raise DataplaneError("DPDK did not initialise in ovs-vswitchd: " + "; ".join(problems))

    def _log(self) -> str:
        try:
            return self.vswitchd_log.read_text(errors="replace")
        except OSError:
            return ""

    def _save(self, state: dict[str, object]) -> None:
        self.state_file.write_text(json.dumps(state))

    # -- ports -----------------------------------------------------------------------

    def add_bridge(self, bridge: Bridge) -> None:
        self.vsctl(*bridge_args(bridge))
        # The bridge's uplink is a kernel interface; it must be up to carry frames.
        self.runner.run(["ip", "link", "set", bridge.uplink.interface, "up"])

    def plug(self, port: VhostPort) -> None:
        """Add a dpdkvhostuserclient port; OVS connects whenever QEMU's socket appears."""
        self.vsctl(*port_args(port))
        problems = diagnose_log(self._log())
        if problems:
            raise DataplaneError(f"port {port.port}: " + "; ".join(problems))

    def unplug(self, port: VhostPort) -> None:
        self.vsctl("--if-exists", "del-port", port.bridge, port.port)

    # -- PMD threads ------------------------------------------------------------------

    def threads(self) -> tuple[ThreadInfo, ...]:
        pid = self.pid("ovs-vswitchd")
        if pid is None:
            raise DataplaneError(f"ovs-vswitchd of {self.rundir} is not running")
        return read_threads(self.fs, pid)

    def apply_pmd_sched(self, *, housekeeping: CpuSet | None = None, settle: float = 10.0) -> Sweep:
        """Give every PMD thread the configured policy and priority (real-time ones with
        SCHED_RESET_ON_FORK), and with ``housekeeping`` send every other thread there
        (rtkvm.dataplane.sched). Idempotent: only what is not right is changed."""
        deadline = time.monotonic() + settle
        threads = self.threads()
        while not split_pmds(threads)[0] and time.monotonic() < deadline:
            time.sleep(0.2)  # OVS creates PMD threads when the first polled port appears
            threads = self.threads()
        if not split_pmds(threads)[0]:
            raise DataplaneError(
                "ovs-vswitchd has no PMD threads: add a dpdkvhostuserclient port first, and "
                "check other_config:pmd-cpu-mask"
            )
        try:
            return sweep(
                threads,
                self.sched,
                policy=self.settings.pmd_policy,
                priority=self.settings.pmd_priority,
                housekeeping=housekeeping,
            )
        except PermissionError:
            raise DataplaneError(
                f"the kernel refused {self.settings.pmd_policy} priority "
                f"{self.settings.pmd_priority} for a PMD thread of ovs-vswitchd: "
                "Operation not permitted. Run `rtkvm net preflight`: the usual causes are "
                "a cpu cgroup with cpu.rt_runtime_us 0 or a missing CAP_SYS_NICE"
            ) from None

    # -- stop --------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Stop both daemons and undo the host changes; returns what could not be done."""
        errors: list[str] = []
        for daemon in ("ovs-vswitchd", "ovsdb-server"):
            pid = self.pid(daemon)
            if pid is None:
                continue
            try:
                self.appctl(daemon, "exit", timeout=10)
            except DataplaneError as exc:
                errors.append(f"{daemon}: graceful exit failed ({exc}); killing it")
            if not _wait_gone(self.fs, pid, 10.0):
                _kill(pid, signal.SIGKILL)
                if not _wait_gone(self.fs, pid, 5.0):
                    errors.append(f"{daemon} (pid {pid}) is still running")
        errors += self._undo_host()
        if not errors:
            Footprint(self.fs.root).unregister("switch", str(self.rundir.resolve()))
        return errors

    def _undo_host(self) -> list[str]:
        errors: list[str] = []
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return errors
        huge = state.get("hugepages")
        if huge:
            self._wait_hugepages_released()
            original = {int(k): int(v) for k, v in huge["original"].items()}
            added = {int(k): int(v) for k, v in huge.get("added", {}).items()}
            try:
                reservation = hugepages.Reservation(huge["size_kb"], original, added)
                hugepages.restore(self.fs, reservation)
            except Exception as exc:  # report and go on: stop must finish every step
                errors.append(f"hugepages not restored: {exc}")
        if state.get("mounted"):
            try:
                self.runner.run(["umount", state["mounted"]])
            except DataplaneError as exc:
                errors.append(str(exc))
        if not errors:
            self.state_file.unlink(missing_ok=True)
        return errors


def _alive(fs: HostFS, pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a detached daemon may be one)."""
    stat = fs.read_maybe(f"/proc/{pid}/stat")
    if isinstance(stat, Unknown) or ")" not in stat:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return bool(fields) and fields[0] not in ("Z", "X")


def _wait_gone(fs: HostFS, pid: int, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not _alive(fs, pid):
            return True
        time.sleep(0.1)
    return not _alive(fs, pid)


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
