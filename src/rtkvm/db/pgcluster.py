"""A private PostgreSQL cluster in a directory of its own: initdb, start, stop, databases.

Uses Debian's server binaries (package ``postgresql``, under
/usr/lib/postgresql/<version>/bin). The server listens only on a unix socket
in ``ROOT/sock``, with trust authentication for the ``postgres`` role: it is
for throw-away test clusters and the OpenStack all-in-one, never for a
production control plane. Root may not run postgres, so as root the cluster is
owned by, and started as, the ``postgres`` system user through ``runuser``.
This module must not choose where a cluster lives (its callers do) and never
touches a cluster it did not initialise (one without ``ROOT/data/PG_VERSION``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from rtkvm.errors import RuntimeSetupError

PG_ROOT = Path("/usr/lib/postgresql")
SERVER_OPTIONS = (
    "-c listen_addresses='' -c max_connections=300 "
    # never take the host's free hugepages: they belong to OVS-DPDK and the guests
    "-c huge_pages=off"
)
THROWAWAY_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def find_bindir() -> Path:
    found = sorted(PG_ROOT.glob("*/bin/initdb")) if PG_ROOT.is_dir() else []
    if not found:
        raise RuntimeSetupError(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): "
            "install the Debian package postgresql (`make setup` does)"
        )
    return found[-1].parent


class PgCluster:
    """One cluster under ``root`` (``data/``, ``sock/``, ``log``)."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.bindir = find_bindir()
        self.root = root
        self.data = root / "data"
        self.sock = root / "sock"
        self.log = root / "log"
        self.durable = durable
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> str:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeSetupError(
                f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
            )
        return done.stdout

    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def init(self) -> None:
        """initdb, unless the cluster is there already."""
        if self.initialised:
            return
        self.sock.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        if self.user is not None:
            shutil.chown(self.root, self.user)
            shutil.chown(self.sock, self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")

    def running(self) -> bool:
        if not self.initialised:
            return False
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]
        if self.user is not None:  # pg_ctl refuses to run as root
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return done.returncode == 0

    def pid(self) -> int | None:
        """The postmaster's pid while the server runs."""
        if not self.running():
            return None
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> None:
        """Start the server (initialised first) unless it runs."""
        self.init()
        if self.running():
            return
        opts = f"-k {self.sock} {SERVER_OPTIONS}"
        if not self.durable:
            opts += " " + THROWAWAY_OPTIONS
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "start")

    def stop(self, *, mode: str = "fast") -> bool:
        """Stop the server; False when it was not running."""
        if not self.running():
            return False
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        return True

    def dsn(self, db: str) -> str:
        return f"host={self.sock} user=postgres dbname={db}"

    def url(self, db: str, driver: str = "psycopg") -> str:
        """The SQLAlchemy URL of database ``db`` (``driver``: psycopg or psycopg2)."""
        return f"postgresql+{driver}://postgres@/{db}?host={self.sock}"

    def create_database(self, name: str, *, exist_ok: bool = False) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is not None:
                if exist_ok:
                    return
                raise RuntimeSetupError(f"database {name} exists already in {self.root}")
            conn.execute(f'CREATE DATABASE "{name}"')
