"""``rtkvm up`` / ``down`` / ``status``: the API server and this host's agent, started once.

:class:`AllInOne` brings up, in order and idempotently: the state directory
and its admin token; the API server (``rtkvm cloud serve`` on 127.0.0.1:PORT
with the directory's SQLite database, admin bootstrapped from the token; with
``tls`` over HTTPS with a self-signed pair kept in the directory, which every
client of the installation verifies);
this host's partition plan (the planner's, like the demo's, unless one is
given); the host's enrollment and agent token; the agent (``rtkvm agent``, or
for a host whose guests Nova builds ``rtkvm openstack agent``, which registers
it as engine ``openstack``: the API then keeps its RT state and places nothing);
then it waits until the API reports the host up, and sets the host's RT
waiver when one is given (a demo on a machine that is not RT-ready; it stays
until cleared with ``rtkvm cloud host set NAME --no-rt-waiver``). Whatever
an ``up`` started is stopped again when a later step fails. ``down`` stops the agent, then the
API, and keeps the state (``purge`` removes it, refused while servers exist).
This module must not print, and must not touch guests: the agent owns them.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rtkvm.allinone.procs import Proc, Stopped
from rtkvm.allinone.selfsigned import ensure_pair
from rtkvm.allinone.state import DEFAULT_PORT, LISTEN_HOST, Config, StateDir
from rtkvm.errors import AllInOneError, CloudError, InputError
from rtkvm.footprint import Footprint
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.planner import PlanRequest, plan_partition
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.wire.node import OPENSTACK_ENGINE, RTKVM_ENGINE, Engine
from rtkvm.wire.user_client import CloudClient

RTKVM_MAIN = "from rtkvm.cli.main import main; main()"
SCRUBBED_ENV = (
    "RTKVM_URL",
    "RTKVM_TOKEN",
    "RTKVM_ADMIN_TOKEN",
    "RTKVM_DATABASE_URL",
    "RTKVM_CA_FILE",
    "RTKVM_TLS_CERT",
    "RTKVM_TLS_KEY",
)


@dataclass(frozen=True)
class AgentOptions:
    """What ``rtkvm agent`` gets besides the API, token and plan (None: its default)."""

    accel: str = "auto"
    root: str = "/"
    interval: float = 2.0
    uri: str | None = None
    image: Path | None = None
    guest_dir: Path | None = None
    probe_cache: Path | None = None
    wiring: Path | None = None
    switch_rundir: Path | None = None
    stop_timeout: float | None = None
    """Seconds a stop waits for the guest before powering it off (the agent's default)."""
    engine: Engine = RTKVM_ENGINE
    """Who builds this host's guests: rtkvm (``rtkvm agent``) or Nova (``rtkvm openstack
    agent``: the API keeps the host's and its guests' RT state and places nothing)."""
    os_cloud: str | None = None
    """OpenStack engine: the cloud in clouds.yaml the agent talks to."""
    os_config_file: Path | None = None
    node_dir: Path | None = None
    """OpenStack engine: the agent's own state (the node's waiver, the last verdicts)."""

    def __post_init__(self) -> None:
        if self.engine == OPENSTACK_ENGINE and not self.os_cloud:
            raise InputError(
                "--engine openstack needs --os-cloud NAME (and --os-config-file FILE unless "
                "clouds.yaml is in a standard place): the cloud whose Nova builds the guests"
            )
        if self.engine != OPENSTACK_ENGINE and (self.os_cloud or self.node_dir):
            raise InputError("--os-cloud and --node-dir are for --engine openstack")

    def command(self, url: str, token_file: Path) -> list[str]:
        """The agent's subcommand with the API and the host's token."""
        if self.engine == OPENSTACK_ENGINE:
            return ["openstack", "agent", "--rtkvm-api", url, "--agent-token-file", str(token_file)]
        return ["agent", "--api", url, "--token-file", str(token_file)]

    def argv(self) -> list[str]:
        args = ["--accel", self.accel, "--interval", f"{self.interval:g}"]
        optional: dict[str, object] = {"--wiring": self.wiring}
        if self.engine == OPENSTACK_ENGINE:
            optional |= {
                "--os-cloud": self.os_cloud,
                "--os-config-file": self.os_config_file,
                "--state-dir": self.node_dir,
                "--image-dir": self.image,
                "--switch-rundir": self.switch_rundir,
            }
            return self._with(args, optional)
        args += ["--root", self.root]
        optional |= {
            "--uri": self.uri,
            "--image": self.image,
            "--guest-dir": self.guest_dir,
            "--probe-cache": self.probe_cache,
            "--switch-rundir": self.switch_rundir,
            "--stop-timeout": None if self.stop_timeout is None else f"{self.stop_timeout:g}",
        }
        return self._with(args, optional)

    @staticmethod
    def _with(args: list[str], optional: dict[str, object]) -> list[str]:
        for flag, value in optional.items():
            if value is not None:
                args += [flag, str(value)]
        return args


@dataclass(frozen=True)
class UpRequest:
    port: int | None = None
    """None: the port of the last ``up``, else 8754."""
    host: str | None = None
    """None: the host of the last ``up``, else this machine's hostname."""
    plan: Path | None = None
    """None: the plan of the last ``up``, else the planner's."""
    agent: AgentOptions = field(default_factory=AgentOptions)
    timeout: float = 90.0
    """Seconds to wait for the API to answer, and again for the host to be up."""
    rt_waiver: str | None = None
    pcpu_share: int | None = None
    """With rt_waiver: guests per RT pCPU of this lab host (None: leave it as it is)."""
    tls: bool | None = None
    """Serve HTTPS with a self-signed pair (None: as the last ``up``, else plain HTTP)."""
    """A reason to admit this host for RT guests although it is not RT-ready (a lab or
    demo machine). None: leave the host's waiver as it is (set or not)."""


WAIVER_ACTION = "RT WAIVER"
"""How the action that waives a host's RT guarantees starts."""


@dataclass
class UpResult:
    url: str
    host: str
    api_pid: int
    agent_pid: int
    seconds: float
    ca_file: str | None = None
    """The certificate clients verify the API against (None: plain HTTP)."""
    actions: list[str] = field(default_factory=list)
    """What this ``up`` did (or found already done), for people."""
    warnings: list[str] = field(default_factory=list)
    """Those of ``actions`` that take a guarantee away (an RT waiver): say them loudly."""


@dataclass(frozen=True)
class ProcStatus:
    name: str
    pid: int | None
    stale_pid: int | None
    log: Path


@dataclass(frozen=True)
class Status:
    state_dir: Path
    config: Config | None
    procs: tuple[ProcStatus, ...]
    host_status: str | None
    """The host's status in the API (None when the API does not answer)."""
    servers: int | None


@dataclass
class DownResult:
    stopped: list[Stopped]
    servers: list[str]
    """Servers the API still had (their guests keep running; the next ``up`` adopts them)."""
    purged: bool


class AllInOne:
    """The all-in-one installation of one state directory."""

    def __init__(
        self,
        state: StateDir,
        *,
        fs: HostFS | None = None,
        python: str = sys.executable,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.fs = fs or HostFS("/")
        self.python = python
        self.clock = clock
        marker = str(state.root)
        self.api = Proc("api", state.pid_file("api"), state.log_file("api"), marker, self.fs)
        self.agent = Proc(
            "agent", state.pid_file("agent"), state.log_file("agent"), marker, self.fs
        )

    # -- up ------------------------------------------------------------------------------

    def up(self, req: UpRequest) -> UpResult:
        if req.rt_waiver is not None and not req.rt_waiver.strip():
            raise InputError(
                "--rt-waiver needs a reason (e.g. 'demo on a laptop'): say why this host may "
                "run RT guests without being RT-ready"
            )
        if req.rt_waiver is not None and req.agent.engine == OPENSTACK_ENGINE:
            raise InputError(
                "--rt-waiver is for rtkvm's own hosts: an OpenStack compute node's waiver is "
                "its own, published to Placement; set it with `rtkvm openstack waiver set REASON`"
            )
        if req.pcpu_share is not None and req.pcpu_share > 1 and req.rt_waiver is None:
            raise InputError(
                "--pcpu-share is for a lab host under an RT waiver: give --rt-waiver REASON too"
            )
        started = self.clock()
        self.state.create()
        Footprint(self.fs.root).register("allinone", str(self.state.root.resolve()))
        config = self._config(req)
        actions: list[str] = []
        for proc in (self.api, self.agent):
            stale = proc.stale()
            if stale is not None:
                shown = f"pid {stale}" if stale >= 0 else "no pid"
                actions.append(f"removed the stale pid file {proc.pid_file} ({shown} is not ours)")
        admin_token = self.state.admin_token()
        url, ca_file = config.url, self.state.ca_file(config)
        new: list[Proc] = []
        try:
            self._ensure_api(config, admin_token, req.timeout, actions, new)
            self.state.save_config(config)
            admin = CloudClient(url, admin_token, timeout=10, ca_file=ca_file)
            self._check_admin(admin)
            admin = self._own_admin_token(admin, url, admin_token, ca_file, actions)
            self._ensure_plan(req, actions)
            self._ensure_enrolled(admin, config.host, actions)
            agent = self._ensure_agent(url, ca_file, req.agent, actions, new)
            self._wait_host_up(admin, config.host, agent, req.timeout)
            if req.rt_waiver is not None:
                self._set_waiver(admin, config.host, req.rt_waiver, req.pcpu_share, actions)
        except BaseException:
            for proc in reversed(new):
                proc.stop(wait=10.0)
            raise
        api_pid, agent_pid = self.api.pid(), self.agent.pid()
        if api_pid is None or agent_pid is None:
            raise AllInOneError("the API or the agent stopped while `rtkvm up` finished")
        warnings = [a for a in actions if a.startswith(WAIVER_ACTION)]
        return UpResult(
            url,
            config.host,
            api_pid,
            agent_pid,
            self.clock() - started,
            ca_file,
            actions,
            warnings,
        )

    def _config(self, req: UpRequest) -> Config:
        old = self.state.config()
        host = req.host or (old.host if old else socket.gethostname())
        port = req.port or (old.port if old else DEFAULT_PORT)
        if not 1 <= port <= 65535:
            raise InputError(f"--port {port}: give a TCP port between 1 and 65535")
        if old is not None and old.host != host:
            raise InputError(
                f"{self.state.root} belongs to host {old.host!r}, not {host!r}: drop --host-name, "
                "or start over with `rtkvm down --purge` (or use another --state-dir)"
            )
        if old is not None and old.port != port and self.api.pid() is not None:
            raise InputError(
                f"the API already runs on port {old.port}: run `rtkvm down` first to move it "
                f"to port {port}"
            )
        tls = req.tls if req.tls is not None else (old.tls if old else False)
        if old is not None and old.tls != tls and self.api.pid() is not None:
            now, then = ("HTTPS", "HTTP") if old.tls else ("HTTP", "HTTPS")
            raise InputError(
                f"the API already runs over {now}: run `rtkvm down` first to serve {then}"
            )
        return Config(port=port, host=host, tls=tls)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _ensure_api(
        self, config: Config, token: str, timeout: float, actions: list[str], new: list[Proc]
    ) -> None:
        url, ca_file = config.url, self.state.ca_file(config)
        pid = self.api.pid()
        if pid is not None:
            self._wait_api(url, ca_file, None, timeout)
            actions.append(f"the API already runs (pid {pid})")
            return
        check_port_free(config.port)
        argv = [self.python, "-c", RTKVM_MAIN, "cloud", "serve",
                "--database", self.state.database_url,
                "--listen", f"{LISTEN_HOST}:{config.port}"]  # fmt: skip
        if config.tls:
            made = ensure_pair(self.state.tls_cert_file, self.state.tls_key_file, LISTEN_HOST)
            if made is not None:
                actions.append(made)
            argv += ["--tls-cert", str(self.state.tls_cert_file),
                     "--tls-key", str(self.state.tls_key_file)]  # fmt: skip
        env = {**self._env(), "RTKVM_ADMIN_TOKEN": token}
        proc = self.api.start(argv, env)
        new.append(self.api)
        self._wait_api(url, ca_file, proc, timeout)
        actions.append(f"started the API on {url} (pid {proc.pid}, database {self.state.database})")

    def _wait_api(
        self,
        url: str,
        ca_file: str | None,
        proc: subprocess.Popen[bytes] | None,
        timeout: float,
    ) -> None:
        client = CloudClient(url, timeout=2, ca_file=ca_file)
        deadline = self.clock() + timeout
        while True:
            try:
                client.version()
                return
            except CloudError:
                pass
            self._check_alive(self.api, proc)
            if self.clock() > deadline:
                raise AllInOneError(
                    f"the API did not answer on {url} within {timeout:g} s; last lines of "
                    f"{self.api.log_file}:\n{self.api.tail()}"
                )
            time.sleep(0.2)

    def _check_alive(self, which: Proc, proc: subprocess.Popen[bytes] | None) -> None:
        """Raise with the log's tail when the process we started (or found) is gone."""
        if proc is not None:
            if proc.poll() is not None:
                raise which.died(proc)
        elif which.pid() is None:
            raise AllInOneError(
                f"the {which.name} process stopped; last lines of {which.log_file}:\n{which.tail()}"
            )

    def _own_admin_token(
        self,
        admin: CloudClient,
        url: str,
        secret: str,
        ca_file: str | None,
        actions: list[str],
    ) -> CloudClient:
        """The bootstrap token expires: the state directory keeps an admin token of its own."""
        mine = [t for t in admin.tokens() if secret.startswith(t.prefix) and t.user == "admin"]
        if not mine or all(t.expires_at is None for t in mine):
            return admin
        issued = admin.create_token()
        self.state.write_secret(self.state.admin_token_file, issued.secret)
        actions.append(
            f"issued the admin token in {self.state.admin_token_file} (the bootstrap one expires)"
        )
        return CloudClient(url, issued.secret, timeout=10, ca_file=ca_file)

    def _check_admin(self, admin: CloudClient) -> None:
        try:
            admin.hosts()
        except CloudError as exc:
            if exc.status in (401, 403):
                raise AllInOneError(
                    f"the API refuses {self.state.admin_token_file} ({exc}): its database "
                    f"{self.state.database} has another admin; `rtkvm down --purge` starts over"
                ) from None
            raise

    def _ensure_plan(self, req: UpRequest, actions: list[str]) -> None:
        if req.plan is not None:
            plan = PartitionPlan.load(req.plan)
            self.state.plan_file.write_text(plan.to_json() + "\n", encoding="utf-8")
            actions.append(f"using the plan {req.plan}")
            return
        if self.state.plan_file.exists():
            PartitionPlan.load(self.state.plan_file)
            return
        plan = default_plan(HostFS(req.agent.root))
        self.state.plan_file.write_text(plan.to_json() + "\n", encoding="utf-8")
        actions.append(
            f"planned this host: RT vCPUs on {plan.rt_vcpu}, housekeeping on "
            f"{plan.housekeeping} ({self.state.plan_file})"
        )

    def _ensure_enrolled(self, admin: CloudClient, host: str, actions: list[str]) -> None:
        token = self.state.read_secret(self.state.agent_token_file)
        known = any(h.name == host for h in admin.hosts())
        if token is not None and known:
            return
        if known:  # enrolled, but its token is lost: enroll afresh (refused with instances)
            admin.delete("hosts", host)
            actions.append(f"host {host} had lost its agent token: enrolled again")
        done = admin.enroll_host(host)
        self.state.write_secret(self.state.agent_token_file, done.agent_token)
        actions.append(f"enrolled host {host} (agent token in {self.state.agent_token_file})")

    def _ensure_agent(
        self,
        url: str,
        ca_file: str | None,
        options: AgentOptions,
        actions: list[str],
        new: list[Proc],
    ) -> subprocess.Popen[bytes] | None:
        """Start the agent unless it runs; returns the new process (None: it ran)."""
        pid = self.agent.pid()
        if pid is not None:
            actions.append(f"the agent already runs (pid {pid})")
            return None
        argv = [self.python, "-c", RTKVM_MAIN,
                *options.command(url, self.state.agent_token_file),
                "--plan", str(self.state.plan_file), *options.argv()]  # fmt: skip
        if ca_file is not None:
            argv += ["--ca-file", ca_file]
        proc = self.agent.start(argv, self._env())
        new.append(self.agent)
        actions.append(f"started the agent (pid {proc.pid})")
        return proc

    def _wait_host_up(
        self, admin: CloudClient, host: str, proc: subprocess.Popen[bytes] | None, timeout: float
    ) -> None:
        deadline = self.clock() + timeout
        while True:
            status = {h.name: h.status for h in admin.hosts()}.get(host)
            if status == "up":
                return
            self._check_alive(self.agent, proc)
            if self.clock() > deadline:
                raise AllInOneError(
                    f"host {host} is not up in the API after {timeout:g} s (status {status}); "
                    f"last lines of {self.agent.log_file}:\n{self.agent.tail()}"
                )
            time.sleep(0.2)

    def _set_waiver(
        self,
        admin: CloudClient,
        host: str,
        reason: str,
        share: int | None,
        actions: list[str],
    ) -> None:
        done = admin.set_rt_waiver(host, reason, pcpu_share=share)
        actions.append(
            f"{WAIVER_ACTION} set on host {host}: RT scheduling guarantees are OFF for it (doctor "
            f"verdict {done.doctor_verdict!r}); its servers' latency is not assured. "
            f"Reason: {done.rt_waiver}. It stays until `rtkvm cloud host set {host} "
            "--no-rt-waiver`"
        )
        if done.pcpu_share > 1:
            actions.append(
                f"PCPU SHARING on host {host}: up to {done.pcpu_share} servers share each "
                "RT pCPU (functional tests only: their vCPUs preempt each other)"
            )

    # -- down and status -------------------------------------------------------------------

    def down(self, *, purge: bool = False) -> DownResult:
        servers = self._servers()
        if purge and servers:
            raise InputError(
                f"{len(servers)} server(s) still exist ({', '.join(servers)}): delete them first "
                "(`rtkvm cloud server delete ...`), or their guests would stay behind unmanaged"
            )
        stopped = [self.agent.stop(), self.api.stop()]
        if self.agent.pid() is None and self.api.pid() is None:
            Footprint(self.fs.root).unregister("allinone", str(self.state.root.resolve()))
        if purge and self.state.exists():
            self.state.purge()
        return DownResult(stopped, servers, purge)

    def status(self) -> Status:
        procs = []
        for proc in (self.api, self.agent):
            pid = proc.pid()
            recorded = proc.recorded_pid()
            stale = recorded if pid is None and proc.pid_file.exists() else None
            procs.append(ProcStatus(proc.name, pid, stale, proc.log_file))
        config = self.state.config() if self.state.exists() else None
        host_status: str | None = None
        servers: int | None = None
        client = self._admin()
        if client is not None and config is not None:
            try:
                hosts = {h.name: h.status for h in client.hosts()}
                host_status = hosts.get(config.host, "not enrolled")
                servers = len(client.servers(all_projects=True))
            except CloudError:
                host_status = None
        return Status(self.state.root, config, tuple(procs), host_status, servers)

    def _admin(self) -> CloudClient | None:
        if not self.state.exists() or self.api.pid() is None:
            return None
        config = self.state.config()
        token = self.state.read_secret(self.state.admin_token_file)
        if config is None or token is None:
            return None
        return CloudClient(config.url, token, timeout=5, ca_file=self.state.ca_file(config))

    def _servers(self) -> list[str]:
        client = self._admin()
        if client is None:
            return []
        try:
            return [f"{s.name} ({s.id})" for s in client.servers(all_projects=True)]
        except CloudError:
            return []


def check_port_free(port: int) -> None:
    """Refuse a port another program listens on, naming it and --port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LISTEN_HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(
                    f"port {port} on {LISTEN_HOST} is in use by another program: "
                    "choose another with --port"
                ) from None
            raise InputError(f"cannot listen on {LISTEN_HOST}:{port}: {exc.strerror}") from None


def default_plan(fs: HostFS) -> PartitionPlan:
    """The demo's choice: half the cores for RT vCPUs on big hosts, one core on small ones."""
    topology = read_topology(fs)
    cores = len(topology.cores)
    if cores < 2:
        raise InputError(
            f"this host has {cores} core(s): none can be isolated for RT vCPUs; "
            "give a plan with --plan (rtkvm host plan -f json)"
        )
    rt_cores = cores // 2 if cores > 2 else 1
    return plan_partition(topology, PlanRequest(rt_cores=rt_cores))
