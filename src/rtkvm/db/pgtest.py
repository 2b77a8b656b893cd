"""A throw-away PostgreSQL server for tests: initdb in a temp dir, start, stop.

Uses Debian's server binaries (package ``postgresql``, under
/usr/lib/postgresql/<version>/bin). The server listens only on a unix
socket in its own directory. Root may not run postgres, so when running as
root the cluster is owned by, and started as, the ``postgres`` system user
through ``runuser``. Each test gets a fresh database from
:meth:`PostgresServer.new_database`. This module must not be imported by
the service itself.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from rtkvm.errors import RuntimeSetupError

PG_ROOT = Path("/usr/lib/postgresql")


def find_bindir() -> Path:
    found = sorted(PG_ROOT.glob("*/bin/initdb")) if PG_ROOT.is_dir() else []
    if not found:
        raise RuntimeSetupError(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): "
            "install the Debian package postgresql (`make setup` does)"
        )
    return found[-1].parent


class PostgresServer:
    """One temporary cluster; ``start()``, then ``url(db)``, then ``stop()``."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="rtkvm-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.user = "postgres" if os.geteuid() == 0 else None
        self._counter = itertools.count()
        self.running = False

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeSetupError(
                f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
            )

    def start(self) -> PostgresServer:
        self.sock.mkdir()
        self.root.chmod(0o755)
        if self.user is not None:
            shutil.chown(self.root, self.user)
            shutil.chown(self.sock, self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        opts = (
            f"-k {self.sock} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200 "
            # never take the host's free hugepages: they belong to OVS-DPDK and the guests
            "-c huge_pages=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start"
        )
        self.running = True
        return self

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}{next(self._counter)}"
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _dsn(self, db: str) -> str:
        return f"host={self.sock} user=postgres dbname={db}"

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@/{db}?host={self.sock}"

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)
