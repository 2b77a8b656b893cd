"""The all-in-one's private RabbitMQ node: start, wait, user, stop; nothing on other addresses.

Debian's ``rabbitmq-server`` runs as root with every file under the stack's
``rabbit/`` (its Erlang cookie too, through HOME), a node name of its own,
and private ports: AMQP, Erlang distribution and epmd, all bound to
127.0.0.1 (RabbitMQ binds distribution to every address unless told, and its
epmd outlives ``rabbitmqctl stop``, so the stop ends that epmd by its port).
This module must not touch the host's own RabbitMQ (/var/lib/rabbitmq) and
must not decide when the node runs (the stack does).
"""

from __future__ import annotations

import shutil
import subprocess
import time

from rtkvm.allinone.procs import Proc, Stopped
from rtkvm.errors import AllInOneError
from rtkvm.hostfs import HostFS
from rtkvm.openstack.aio.layout import AioSettings, StackLayout

RABBIT_BIN = "/usr/lib/rabbitmq/bin"
NODE = "rtkvm-aio@localhost"
USER = "rtkvm"


class RabbitNode:
    def __init__(self, layout: StackLayout, settings: AioSettings, fs: HostFS) -> None:
        self.layout = layout
        self.settings = settings
        self.proc = Proc(
            "rabbitmq",
            layout.pid("rabbitmq"),
            layout.log("rabbitmq"),
            layout.marker,
            fs,
            group=True,
        )

    def env(self) -> dict[str, str]:
        base = self.layout.rabbit
        ports = self.settings.ports
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(base),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": NODE,
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_DIST_PORT": str(ports["rabbit_dist"]),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_PORT": str(ports["epmd"]),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _write_config(self) -> None:
        base = self.layout.rabbit
        (base / "log").mkdir(parents=True, exist_ok=True)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.settings.ports['rabbit']}\n"
            "log.console = false\nlog.file.level = warning\n"
        )
        (base / "enabled_plugins").write_text("[].\n")

    def running(self) -> bool:
        return self.proc.pid() is not None

    def start(self, timeout: float = 120.0) -> None:
        """Start the node unless it runs; wait until it answers; the service user in it."""
        if shutil.which("rabbitmq-server", path="/usr/sbin:/usr/lib/rabbitmq/bin") is None:
            raise AllInOneError(
                "RabbitMQ is not installed: install the Debian package rabbitmq-server "
                "(`make setup` does)"
            )
        if not self.running():
            self.proc.stale()
            self._write_config()
            # $0 of the shell carries the stack's directory: proof that the process is ours
            self.proc.start(
                ["/bin/sh", "-c", f"{RABBIT_BIN}/rabbitmq-server", f"rtkvm:{self.layout.marker}"],
                self.env(),
            )
        deadline = time.monotonic() + timeout
        while True:  # await_startup needs a node that epmd knows already
            try:
                self.ctl("ping", timeout=10, what="reach RabbitMQ")
                break
            except AllInOneError:
                if time.monotonic() > deadline or not self.running():
                    raise AllInOneError(
                        f"RabbitMQ did not start within {timeout:.0f} s; last lines of "
                        f"{self.proc.log_file}:\n{self.proc.tail()}"
                    ) from None
                time.sleep(1.0)
        self.ctl("await_startup", timeout=timeout, what="wait for RabbitMQ to start")

    def ensure_user(self, password: str) -> None:
        users = self.ctl("list_users", "--quiet", what="list RabbitMQ users")
        if any(line.split()[:1] == [USER] for line in users.splitlines()):
            self.ctl("change_password", USER, password, what="set the RabbitMQ password")
        else:
            self.ctl("add_user", USER, password, what="add the RabbitMQ user")
        self.ctl("set_permissions", "-p", "/", USER, ".*", ".*", ".*", what="grant permissions")

    def ctl(self, *args: str, timeout: float = 60.0, what: str) -> str:
        cmd = [f"{RABBIT_BIN}/rabbitmqctl", "-n", NODE, *args]
        if args[0] == "await_startup":
            cmd += ["--timeout", str(int(timeout))]
        try:
            done = subprocess.run(
                cmd,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout + 15,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise AllInOneError(f"could not {what}: rabbitmqctl {args[0]} timed out") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()[-800:]
            log = self.proc.tail(10)
            raise AllInOneError(f"could not {what} (rabbitmqctl {args[0]}): {detail}\n{log}")
        return done.stdout

    def stop(self) -> list[Stopped]:
        stopped = [self.proc.stop(wait=60.0)]
        epmd = shutil.which("epmd") or next(iter(sorted(_erts_epmd())), None)
        if epmd is not None:
            subprocess.run(
                [epmd, "-port", str(self.settings.ports["epmd"]), "-kill"],
                env=self.env(), capture_output=True, check=False, timeout=15,
            )  # fmt: skip
        time.sleep(0.1)
        return stopped


def _erts_epmd() -> list[str]:
    from pathlib import Path

    return [str(p) for p in Path("/usr/lib/erlang").glob("erts-*/bin/epmd")]
