"""The all-in-one's private MariaDB server, for Neutron alone.

Neutron's migrations are written for MySQL/MariaDB (2025.2's ``tag_case_sensitive``
runs ``ALTER TABLE ... CONVERT TO CHARACTER SET utf8mb4``, which PostgreSQL
refuses), so Neutron gets Debian's MariaDB while every other service stays on
PostgreSQL. The server runs from the stack's ``mariadb/`` directory with no
network at all (a unix socket in that directory only, root with no password,
reachable by root alone) and ``--no-defaults``, so the host's own MariaDB
configuration and data are never read. This module must not decide when the
server runs (the stack does).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from rtkvm.allinone.procs import Proc, Stopped
from rtkvm.errors import AllInOneError
from rtkvm.hostfs import HostFS


class MariaDB:
    def __init__(self, root: Path, marker: str, fs: HostFS, pid_file: Path, log: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.sock = root / "mysqld.sock"
        self.proc = Proc("mariadb", pid_file, log, marker, fs)

    def url(self, db: str) -> str:
        return f"mysql+pymysql://root@localhost/{db}?unix_socket={self.sock}&charset=utf8mb4"

    def _server(self) -> str:
        found = shutil.which("mariadbd", path="/usr/sbin:/usr/bin")
        if found is None:
            raise AllInOneError(
                "MariaDB is not installed: install the Debian package mariadb-server "
                "(`make setup` does); Neutron's migrations need MySQL or MariaDB"
            )
        return found

    def running(self) -> bool:
        return self.proc.pid() is not None

    def start(self, timeout: float = 60.0) -> None:
        server = self._server()
        if self.running():
            return
        self.proc.stale()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not (self.data / "mysql").is_dir():
            done = subprocess.run(
                ["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root",
                 "--auth-root-authentication-method=normal", "--skip-test-db"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise AllInOneError(f"mariadb-install-db failed: {done.stderr.strip()[-1500:]}")
        self.proc.start(
            [server, "--no-defaults", f"--datadir={self.data}", f"--socket={self.sock}",
             f"--pid-file={self.root / 'mariadbd.pid'}", "--skip-networking", "--user=root",
             "--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=2",
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"],
            {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._answers():
            if not self.running() or time.monotonic() > deadline:
                raise AllInOneError(
                    f"MariaDB did not start; last lines of {self.proc.log_file}:\n"
                    f"{self.proc.tail()}"
                )
            time.sleep(0.3)

    def _answers(self) -> bool:
        done = subprocess.run(
            ["mariadb-admin", "--no-defaults", f"--socket={self.sock}", "-uroot", "ping"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return done.returncode == 0

    def create_database(self, name: str) -> None:
        done = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.sock}", "-uroot", "-e",
             f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise AllInOneError(f"could not create the MariaDB database {name}: {done.stderr}")

    def stop(self) -> Stopped:
        return self.proc.stop(wait=60.0)
