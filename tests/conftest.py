"""Fixtures shared by every test folder: one PostgreSQL server for the whole session, and
one fresh database per test (SQLite or PostgreSQL) for the tests parametrized over both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rtkvm.db.pgtest import PostgresServer


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/rtkvm.db"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.new_database()
