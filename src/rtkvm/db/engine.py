"""The database handle: engine, read and write sessions, migrations.

SQLite gets WAL, a busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for
write sessions (a writer takes the write lock when it starts, so two
writers queue on the busy timeout instead of failing with "database is
locked" when a reader upgrades). PostgreSQL runs READ COMMITTED; races there
are settled by UNIQUE constraints and conditional updates, which the callers
retry; a state change reads its row FOR UPDATE; its sessions run without JIT
compilation, which only slowed the control plane's short statements down. ``migrate`` runs ``alembic
upgrade head`` programmatically, one process at a time (a transaction-scoped
advisory lock on PostgreSQL, a lock file next to the SQLite database), so API
processes starting together on a new database do not race in it. A new SQLite
file is made 0600: it holds token hashes and every tenant's placement.

This module must not hold application state: every decision is in the DB.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from rtkvm.db.prepared import Prepared
from rtkvm.errors import InputError

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY = 0x72746B766D  # "rtkvm": the advisory lock that serializes migrations


class Database:
    """An engine plus session factories; ``write()`` sessions commit or roll back."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 30000) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise InputError(
                f"database URL {url!r} does not parse: use sqlite:///PATH or "
                "postgresql+psycopg://USER@HOST/DB"
            ) from None
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.sqlite_file: Path | None = None
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                self.sqlite_file = Path(parsed.database)
                self.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
                _private_file(self.sqlite_file)
            self.engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
            )
            _sqlite_setup(self.engine, busy_timeout_ms)
        else:
            self.engine = create_engine(
                url,
                pool_size=20,
                max_overflow=40,
                pool_pre_ping=True,
                # no JIT: the control plane's statements are short, and compiling one costs
                # more than running it (140 ms for a refusal's count over 10,000 hosts)
                connect_args={"options": "-c jit=off"},
            )
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        writer: Engine = self.engine
        if self.is_sqlite:
            writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._write = sessionmaker(writer, expire_on_commit=False)
        self._prepared: dict[object, Prepared] = {}

    def prepared(self, key: object, build: Callable[[], Any]) -> Prepared:
        """The statement ``build()`` makes, compiled once for this database (per ``key``)."""
        found = self._prepared.get(key)
        if found is None:
            found = Prepared(build(), self.engine.dialect)
            self._prepared[key] = found
        return found

    def fetch(self, statement: Prepared, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run one read statement on its own and return its rows as tuples.

        No ORM, no transaction of ours: one statement sees one consistent snapshot (on
        PostgreSQL the connection is in autocommit for it, which spares the BEGIN and
        ROLLBACK round trips). For the hot read paths only; everything else uses
        :meth:`read` and :meth:`write`.
        """
        raw = self.engine.raw_connection()
        driver: Any = raw.driver_connection
        try:
            if not self.is_sqlite:
                driver.autocommit = True
            cursor = raw.cursor()
            try:
                cursor.execute(statement.sql, statement.bind(values))
                return [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()
        finally:
            if not self.is_sqlite:
                driver.autocommit = False
            raw.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; closed (its transaction rolled back) at the end.

        Objects loaded in it stay readable afterwards (closing does not expire them).
        """
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction: commits when the block ends, rolls back on any exception."""
        with self._write() as session, session.begin():
            yield session

    def revisions(self) -> tuple[str | None, str | None]:
        """(the database's Alembic revision, the code's head)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config(self.url)).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current, head

    def migrate(self, revision: str = "head") -> None:
        """``alembic upgrade head`` on this database, by one process at a time.

        On SQLite, foreign keys are off while migrating (batch migrations
        recreate tables, which other rows refer to) and checked afterwards.
        """
        with self._migration_lock():
            self._migrate(revision)

    def serialize(self, session: Session) -> None:
        """Make this write transaction wait for any other that called it (start-up work that
        two API processes would otherwise both do). SQLite writers are serialized already."""
        if not self.is_sqlite:
            session.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.sqlite_file is None:
            yield  # PostgreSQL: the advisory lock is taken inside the migration's transaction
            return
        lock = self.sqlite_file.with_name(self.sqlite_file.name + ".migrate.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when closed, also by a crash
            yield
        finally:
            os.close(fd)

    def _migrate(self, revision: str) -> None:
        with self.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            if self.is_sqlite and raw is not None:
                raw.execute("PRAGMA foreign_keys=OFF")  # outside any transaction, as it must be
            try:
                with conn.begin():
                    if not self.is_sqlite:  # the second process waits, then finds head
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
                    cfg = alembic_config(self.url)
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, revision)
                    if self.is_sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise RuntimeError(f"migration left dangling references: {broken}")
            finally:
                if self.is_sqlite and raw is not None:
                    raw.execute("PRAGMA foreign_keys=ON")

    def dispose(self) -> None:
        self.engine.dispose()


def _private_file(path: Path) -> None:
    """Create the database file 0600 if it is new (SQLite would make it 0644)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_setup(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
