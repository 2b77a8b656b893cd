"""``rtkvm openstack up | status | down``: a small OpenStack on this host, started by rtkvm.

:class:`OpenStackAio` brings up, in order and idempotently: the stack's
directory and passwords; the cloud virtualenv (pinned services from PyPI); a
private PostgreSQL cluster and its databases; a private RabbitMQ node; the
services' configurations (rtkvm's templates) and nova-compute's RT drop-in
from this host's partition plan (:mod:`rtkvm.openstack.novaconf`); the
one-time database syncs, Keystone's bootstrap and Nova's cells; Keystone and
its catalog; then Placement, Glance, Neutron, Nova's API, conductor,
scheduler and compute. It waits until nova-compute is up and its hypervisor is
in the cell, and writes ``clouds.yaml`` (cloud ``rtkvm-aio``, admin). Whatever
an ``up`` started is stopped again when a later step fails. ``down`` stops
the services (nova-compute first), RabbitMQ and PostgreSQL and keeps the
state; ``down --purge`` also destroys the Nova guests whose disks are in the
stack's instance directory and removes the directory. It is for tests, demos
and trying rtkvm, never for production. This module must not print.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from rtkvm.allinone.procs import Proc, Stopped
from rtkvm.allinone.stack import default_plan
from rtkvm.db.pgcluster import PgCluster
from rtkvm.errors import AllInOneError
from rtkvm.footprint import Footprint
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.openstack.aio import nova_guests
from rtkvm.openstack.aio.catalog import ensure_catalog
from rtkvm.openstack.aio.configs import DATABASES, ConfigValues, render_all, write_all
from rtkvm.openstack.aio.hugepages import GuestHugepages
from rtkvm.openstack.aio.layout import AioSettings, StackLayout, aio_settings
from rtkvm.openstack.aio.mariadb import MariaDB
from rtkvm.openstack.aio.rabbit import RabbitNode
from rtkvm.openstack.aio.services import SERVICES, Service, argv
from rtkvm.openstack.cloudsyaml import write_clouds_yaml
from rtkvm.openstack.neutronwiring import NeutronWiring, neutron_wiring
from rtkvm.openstack.novaconf import nova_settings, render
from rtkvm.openstack.session import CloudSession
from rtkvm.openstack.venvs import ensure_venv
from rtkvm.priorities import VCPU_DEFAULT
from rtkvm.runtime.libvirtd import ensure_hugetlbfs_seen, restart_libvirtd

LIBVIRT_URI = "qemu:///system"


@dataclass(frozen=True)
class AioRequest:
    plan: Path | None = None
    """None: the plan of the last ``up``, else the planner's (like ``rtkvm up``)."""
    virt_type: Literal["kvm", "qemu"] = "qemu"
    """Nova's [libvirt] virt_type: kvm, or qemu (TCG) where KVM cannot run a guest."""
    drop_locked: bool = False
    """Leave <locked/> out of Nova's guests (libvirt cannot lock guest memory here)."""
    guest_hugepages: int | None = None
    """2 MiB pages per RT NUMA node held for Nova's guests (None: as the last ``up``)."""
    switch: Path | None = None
    """The run directory of rtkvm's switch (``rtkvm net up``) that Neutron's OVS agent and
    Nova's os-vif plug guests into (None: as the last ``up``; none at first)."""
    detach_switch: bool = False
    """Stop Neutron's agent and forget the switch."""
    no_msix: bool = False
    """Give Nova's vhost-user NICs vectors=0 (rtkvm's vhost_user_tcg_msix quirk)."""
    timeout: float = 300.0


@dataclass
class AioResult:
    clouds_yaml: Path
    cloud: str
    actions: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Seconds per phase (venv, databases, rabbitmq, syncs, services, compute)."""
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    answers: bool | None
    """APIs: whether the health path answered; daemons: None."""
    log: Path


class OpenStackAio:
    def __init__(
        self,
        layout: StackLayout | None = None,
        *,
        fs: HostFS | None = None,
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.layout = layout or StackLayout()
        self.fs = fs or HostFS("/", writable=True)
        self.settings: AioSettings = aio_settings()
        self.progress = progress
        self.pg = PgCluster(self.layout.pg)
        self.rabbit = RabbitNode(self.layout, self.settings, self.fs)
        self.hugepages = GuestHugepages(self.fs, self.layout.root / "run" / "hugepages.json")
        self.mariadb = MariaDB(
            self.layout.root / "mariadb",
            self.layout.marker,
            self.fs,
            self.layout.pid("mariadb"),
            self.layout.log("mariadb"),
        )
        self.procs = {
            s.name: Proc(
                s.name,
                self.layout.pid(s.name),
                self.layout.log(s.name),
                self.layout.marker,
                self.fs,
                group=True,
            )
            for s in SERVICES
        }

    # -- up ---------------------------------------------------------------------------------

    def up(self, req: AioRequest) -> AioResult:
        self.layout.make()
        Footprint(self.fs.root).register("openstack", str(self.layout.root))
        result = AioResult(self.layout.clouds_yaml, self.settings.cloud)
        self._check_ports()
        with self._phase(result, "venv", "the OpenStack virtualenv (pip, first time ~5 min)"):
            venv = ensure_venv("cloud")
        started: list[str] = []
        try:
            with self._phase(result, "databases", "PostgreSQL"):
                was = self.pg.running()
                self.pg.start()
                if not was:
                    started.append("postgresql")
                for name in DATABASES:
                    self.pg.create_database(name, exist_ok=True)
                if not self.mariadb.running():
                    started.append("mariadb")
                self.mariadb.start()
                self.mariadb.create_database("neutron")
            with self._phase(result, "rabbitmq", "RabbitMQ"):
                if not self.rabbit.running():
                    started.append("rabbitmq")
                self.rabbit.start()
                secrets = self.layout.secrets()
                self.rabbit.ensure_user(secrets.rabbit)
            plan = self._plan(req, result.actions)
            wiring = self._switch(req, result.actions)
            changed = self._configure(venv, plan, req, wiring, result.actions)
            self._restart_changed(changed, result.actions)
            self._hugepages(req, plan, result)
            with self._phase(result, "syncs", "database syncs, Keystone bootstrap, Nova cells"):
                self._syncs(venv, result.actions)
            with self._phase(result, "services", "the OpenStack services"):
                self._start(SERVICES[0], venv, req, started, result.actions, wiring)
                self._wait_api(SERVICES[0], req.timeout)
                made = ensure_catalog(self.settings, secrets.admin, secrets.service)
                result.actions += [f"Keystone: made {m}" for m in made]
                for service in SERVICES[1:]:
                    if service.needs_switch and wiring is None:
                        if self.procs[service.name].stop(wait=30.0).how in ("stopped", "killed"):
                            result.actions.append(f"stopped {service.name}: no switch attached")
                        continue
                    self._start(service, venv, req, started, result.actions, wiring)
                for service in SERVICES[1:]:
                    if service.wsgi is not None:
                        self._wait_api(service, req.timeout)
            with self._phase(result, "compute", "nova-compute up and in the cell"):
                self._wait_compute(venv, req.timeout)
            write_clouds_yaml(self.layout.clouds_yaml, self.settings, secrets.admin)
            if wiring is not None:
                with self._phase(result, "neutron_agent", "Neutron's OVS agent on rtkvm's switch"):
                    self._wait_agent(req.timeout)
            return result
        except Exception:
            self._stop_started(started)
            raise

    @contextlib.contextmanager
    def _phase(self, result: AioResult, key: str, what: str):  # type: ignore[no-untyped-def]
        self.progress(what)
        began = time.monotonic()
        yield
        result.seconds[key] = round(time.monotonic() - began, 1)

    def _check_ports(self) -> None:
        """Every port of the stack is free, or held by the stack itself."""
        ours = {s.port for s in SERVICES if s.port and self.procs[s.name].pid() is not None}
        if self.rabbit.running():
            ours |= {"rabbit", "rabbit_dist", "epmd"}
        for key, port in self.settings.ports.items():
            if key in ours or key == "epmd":  # epmd is shared by Erlang nodes by design
                continue
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    raise AllInOneError(
                        f"port {port} ({key}) on 127.0.0.1 is taken by another program: the "
                        "all-in-one needs it (ports are in rtkvm/data/openstack.toml [aio.ports])"
                    ) from None

    def _plan(self, req: AioRequest, actions: list[str]) -> PartitionPlan:
        plan_file = self.layout.root / "etc" / "plan.json"
        if req.plan is not None:
            plan = PartitionPlan.load(req.plan)
            actions.append(f"using the plan {req.plan}")
        elif plan_file.is_file():
            return PartitionPlan.load(plan_file)
        else:
            plan = default_plan(self.fs)
            actions.append(
                f"planned this host: RT vCPUs on {plan.rt_vcpu}, "
                f"housekeeping on {plan.housekeeping}"
            )
        plan_file.write_text(plan.to_json() + "\n", encoding="utf-8")
        return plan

    @property
    def _switch_file(self) -> Path:
        return self.layout.root / "etc" / "switch"

    def attached_switch(self) -> Path | None:
        """The run directory of the rtkvm switch the last ``up`` attached, if any."""
        try:
            return Path(self._switch_file.read_text().strip())
        except FileNotFoundError:
            return None

    def _switch(self, req: AioRequest, actions: list[str]) -> NeutronWiring | None:
        if req.detach_switch:
            if self.attached_switch() is not None:
                actions.append("detached rtkvm's switch: Neutron's agent stops")
            self._switch_file.unlink(missing_ok=True)
            return None
        rundir = req.switch or self.attached_switch()
        if rundir is None:
            return None
        wiring = neutron_wiring(rundir)
        if not wiring.bridges:
            raise AllInOneError(
                f"rtkvm's switch in {rundir} carries no physical network: give `rtkvm net up` "
                "a networks file and this host's wiring"
            )
        if req.switch is not None and self.attached_switch() != req.switch:
            self._switch_file.write_text(f"{req.switch}\n")
            actions.append(f"attached rtkvm's switch in {rundir} ({wiring.bridge_mappings})")
        return wiring

    def _configure(
        self,
        venv: Path,
        plan: PartitionPlan,
        req: AioRequest,
        wiring: NeutronWiring | None,
        actions: list[str],
    ) -> list[str]:
        values = ConfigValues(
            self.layout,
            self.settings,
            self.layout.secrets(),
            venv,
            socket.gethostname(),
            LIBVIRT_URI,
            {
                **{name: self.pg.url(name, "psycopg2") for name in DATABASES},
                "neutron": self.mariadb.url("neutron"),
            },
            wiring,
        )
        files = render_all(values)
        files["nova/nova.conf.d/50-rtkvm.conf"] = render(
            nova_settings(plan, priority=VCPU_DEFAULT, virt_type=req.virt_type),
            f"the partition plan {self.layout.root / 'etc' / 'plan.json'}",
        )
        for service, paste in (("nova", "api-paste.ini"), ("glance", "glance-api-paste.ini")):
            files[f"{service}/{paste}"] = (venv / "etc" / service / paste).read_text()
        changed = write_all(self.layout, files)
        if changed:
            actions.append(f"wrote {', '.join(changed)} under {self.layout.root / 'etc'}")
        return changed

    def _hugepages(self, req: AioRequest, plan: PartitionPlan, result: AioResult) -> None:
        pages = self.hugepages.reserved() if req.guest_hugepages is None else req.guest_hugepages
        before = self.hugepages.reserved()
        actions, mounted = self.hugepages.ensure(pages, plan)
        result.actions += actions
        # libvirtd finds hugetlbfs only when it starts: restart it for a mount made here, or
        # one made after rtkvm started it (rtkvm net up, before this, mounts one too)
        restarted = (
            restart_libvirtd(self.fs, "hugetlbfs was mounted")
            if mounted
            else ensure_hugetlbfs_seen(self.fs)
        )
        result.actions += restarted.actions
        result.warnings += restarted.warnings
        compute = self.procs["nova-compute"]
        if (mounted or before != pages) and compute.pid() is not None:
            compute.stop(wait=30.0)  # it reads the host's pages and libvirt's at start
            result.actions.append("stopped nova-compute: the host's hugepages changed")

    def _restart_changed(self, changed: list[str], actions: list[str]) -> None:
        """Stop the running services whose configuration changed (started again below)."""
        dirs = {rel.split("/", 1)[0] for rel in changed}
        for service in reversed(SERVICES):
            config = service.config or "nova"  # the Nova daemons read nova.conf
            proc = self.procs[service.name]
            if config in dirs and proc.pid() is not None:
                proc.stop(wait=30.0)
                actions.append(f"stopped {service.name}: its configuration changed")

    def _syncs(self, venv: Path, actions: list[str]) -> None:
        etc = self.layout.root / "etc"
        secrets = self.layout.secrets()
        nova = ["--config-file", str(etc / "nova" / "nova.conf")]
        keystone = ["--config-file", str(etc / "keystone" / "keystone.conf")]
        neutron = [
            "--config-file", str(etc / "neutron" / "neutron.conf"),
            "--config-file", str(etc / "neutron" / "plugins" / "ml2" / "ml2_conf.ini"),
        ]  # fmt: skip
        url = self.settings.auth_url
        steps: list[tuple[str, list[str]]] = [
            ("keystone-db", ["keystone-manage", *keystone, "db_sync"]),
            ("keystone-fernet", ["keystone-manage", *keystone, "fernet_setup",
                                 "--keystone-user", "root", "--keystone-group", "root"]),
            ("keystone-credential", ["keystone-manage", *keystone, "credential_setup",
                                     "--keystone-user", "root", "--keystone-group", "root"]),
            ("keystone-bootstrap", ["keystone-manage", *keystone, "bootstrap",
                                    f"--bootstrap-password={secrets.admin}",
                                    "--bootstrap-admin-url", url, "--bootstrap-public-url", url,
                                    "--bootstrap-internal-url", url,
                                    "--bootstrap-region-id", self.settings.region]),
            ("placement-db", ["placement-manage", "--config-file",
                              str(etc / "placement" / "placement.conf"), "db", "sync"]),
            ("glance-db", ["glance-manage", "--config-file",
                           str(etc / "glance" / "glance-api.conf"), "db_sync"]),
            ("neutron-db", ["neutron-db-manage", *neutron, "upgrade", "heads"]),
            ("nova-api-db", ["nova-manage", *nova, "api_db", "sync"]),
            ("nova-cell0", ["nova-manage", *nova, "cell_v2", "map_cell0", "--database_connection",
                            self.pg.url("nova_cell0", "psycopg2")]),
            ("nova-cell1", ["nova-manage", *nova, "cell_v2", "create_cell", "--name",
                            self.settings.cell]),
            ("nova-db", ["nova-manage", *nova, "db", "sync"]),
        ]  # fmt: skip
        done = self.layout.done()
        for step, cmd in steps:
            if step in done:
                continue
            self._run(venv, cmd, step)
            self.layout.mark_done(step)
            actions.append(f"{step}: done")

    def _run(self, venv: Path, cmd: list[str], what: str, timeout: float = 600) -> str:
        full = [str(venv / "bin" / cmd[0]), *cmd[1:]]
        try:
            done = subprocess.run(
                full, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise AllInOneError(f"{what}: {cmd[0]} {cmd[-1]} took over {timeout:.0f} s") from None
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
            raise AllInOneError(
                f"{what} failed: {cmd[0]} ... {cmd[-1]} ({done.returncode}):\n{tail}"
            )
        return done.stdout

    def _start(
        self,
        service: Service,
        venv: Path,
        req: AioRequest,
        started: list[str],
        actions: list[str],
        wiring: NeutronWiring | None,
    ) -> None:
        proc = self.procs[service.name]
        if proc.pid() is not None:
            return
        proc.stale()
        port = self.settings.ports.get(service.port, 0)
        env = {"PATH": f"{venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        if wiring is not None:  # ovs-vsctl run by the agent or os-vif finds rtkvm's ovsdb
            env["OVS_RUNDIR"] = str(wiring.rundir)
        proc.start(argv(service, self.layout, venv, port, req.drop_locked, req.no_msix), env)
        started.append(service.name)
        actions.append(f"started {service.name}")

    def _health_url(self, service: Service) -> str:
        return self.settings.url(service.port) + service.health

    def _answers(self, service: Service) -> bool:
        try:
            answer = httpx.get(self._health_url(service), timeout=5.0)
        except httpx.HTTPError:
            return False
        return answer.status_code < 500

    def _wait_api(self, service: Service, timeout: float) -> None:
        proc = self.procs[service.name]
        deadline = time.monotonic() + timeout
        while not self._answers(service):
            if proc.pid() is None:
                raise AllInOneError(
                    f"{service.name} exited at start; last lines of {proc.log_file}:\n{proc.tail()}"
                )
            if time.monotonic() > deadline:
                raise AllInOneError(
                    f"{service.name} did not answer {self._health_url(service)} within "
                    f"{timeout:.0f} s; last lines of {proc.log_file}:\n{proc.tail()}"
                )
            time.sleep(0.5)

    def _wait_compute(self, venv: Path, timeout: float) -> None:
        """nova-compute reported in, and its host is mapped to the cell."""
        nova = ["--config-file", str(self.layout.etc("nova") / "nova.conf")]
        compute = self.procs["nova-compute"]
        deadline = time.monotonic() + timeout
        while True:
            out = self._run(venv, ["nova-manage", *nova, "cell_v2", "discover_hosts", "--verbose"],
                            "discover nova-compute's host")  # fmt: skip
            listed = self._run(venv, ["nova-manage", *nova, "cell_v2", "list_hosts"], "list hosts")
            if socket.gethostname() in listed:
                return
            if compute.pid() is None:
                raise AllInOneError(
                    f"nova-compute exited; last lines of {compute.log_file}:\n{compute.tail()}"
                )
            if time.monotonic() > deadline:
                raise AllInOneError(
                    f"nova-compute's host did not show up in the cell within {timeout:.0f} s "
                    f"({out.strip()[-300:]}); last lines of {compute.log_file}:\n{compute.tail()}"
                )
            time.sleep(2.0)

    def _wait_agent(self, timeout: float) -> None:
        """Neutron's OVS agent on this host reported in, alive, on rtkvm's netdev datapath."""
        agent = self.procs["neutron-openvswitch-agent"]
        session = CloudSession(self.settings.cloud, self.layout.clouds_yaml)
        path = f"/v2.0/agents?binary=neutron-openvswitch-agent&host={socket.gethostname()}"
        deadline = time.monotonic() + timeout
        while True:
            found = session.call("network", "GET", path, what="list Neutron's agents")["agents"]
            alive = [a for a in found if a["alive"]]
            if alive:
                datapath = alive[0]["configurations"].get("datapath_type")
                if datapath != "netdev":
                    raise AllInOneError(
                        f"Neutron's OVS agent reports datapath {datapath!r}, not rtkvm's "
                        f"netdev (DPDK) one; see {agent.log_file}"
                    )
                return
            if agent.pid() is None:
                raise AllInOneError(
                    f"Neutron's OVS agent exited; last lines of {agent.log_file}:\n{agent.tail()}"
                )
            if time.monotonic() > deadline:
                raise AllInOneError(
                    f"Neutron's OVS agent did not report in within {timeout:.0f} s; last lines "
                    f"of {agent.log_file}:\n{agent.tail()}"
                )
            time.sleep(1.0)

    def _stop_started(self, started: list[str]) -> None:
        for name in reversed(started):
            with contextlib.suppress(Exception):
                if name == "rabbitmq":
                    self.rabbit.stop()
                elif name == "postgresql":
                    self.pg.stop()
                elif name == "mariadb":
                    self.mariadb.stop()
                else:
                    self.procs[name].stop(wait=30.0)

    # -- status, down -------------------------------------------------------------------------

    def status(self) -> list[ServiceStatus]:
        out = [
            ServiceStatus("postgresql", self.pg.pid(), None, self.pg.log),
            ServiceStatus("mariadb", self.mariadb.proc.pid(), None, self.mariadb.proc.log_file),
            ServiceStatus("rabbitmq", self.rabbit.proc.pid(), None, self.rabbit.proc.log_file),
        ]
        attached = self.attached_switch() is not None
        for service in SERVICES:
            proc = self.procs[service.name]
            pid = proc.pid()
            if service.needs_switch and not attached and pid is None:
                continue
            answers = None
            if service.wsgi is not None:
                answers = pid is not None and self._answers(service)
            out.append(ServiceStatus(service.name, pid, answers, proc.log_file))
        return out

    def down(self, *, purge: bool = False) -> list[Stopped]:
        """Stop everything (nova-compute first); with ``purge`` also destroy the stack's Nova
        guests (before their hugepages are given back) and remove its directory. Raises
        AllInOneError naming what could not be undone, after doing all the rest."""
        stopped = [self.procs[s.name].stop(wait=30.0) for s in reversed(SERVICES)]
        if purge:
            nova_guests.destroy(self.layout.instances)
        problems = self.hugepages.release()
        stopped += self.rabbit.stop()
        stopped.append(self.mariadb.stop())
        stopped.append(Stopped("postgresql", "stopped" if self.pg.stop() else "not running"))
        if problems:
            raise AllInOneError(
                "; ".join(problems) + " (the rest is stopped; run down again once it is free)"
            )
        if purge:
            shutil.rmtree(self.layout.root, ignore_errors=True)
        Footprint(self.fs.root).unregister("openstack", str(self.layout.root))
        return stopped
