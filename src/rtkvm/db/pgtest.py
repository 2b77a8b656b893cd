"""A throw-away PostgreSQL server for tests: a :class:`PgCluster` in a temp dir.

Durability is off (fsync, synchronous commit, full pages): the cluster dies
with the test run. Each test gets a fresh database from
:meth:`PostgresServer.new_database`. This module must not be imported by the
service itself.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

from rtkvm.db.pgcluster import PgCluster, find_bindir

__all__ = ["PostgresServer", "find_bindir"]


class PostgresServer:
    """One temporary cluster; ``start()``, then ``url(db)``, then ``stop()``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rtkvm-pg-"))
        self.cluster = PgCluster(self.root, durable=False)
        self.bindir = self.cluster.bindir
        self.data = self.cluster.data
        self.sock = self.cluster.sock
        self._counter = itertools.count()
        self.running = False

    def start(self) -> PostgresServer:
        self.cluster.start()
        self.running = True
        return self

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}{next(self._counter)}"
        self.cluster.create_database(name)
        return self.url(name)

    def _dsn(self, db: str) -> str:
        return self.cluster.dsn(db)

    def url(self, db: str) -> str:
        return self.cluster.url(db)

    def stop(self) -> None:
        if self.running:
            self.cluster.stop(mode="immediate")
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)
