"""Fixtures: a PostgreSQL server for the session, and one app per test on sqlite or postgresql."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from rtkvm.api.app import create_app
from rtkvm.api.testing import ADMIN_TOKEN, Cloud, FakeClock
from rtkvm.db.pgtest import PostgresServer
from rtkvm.settings import Settings


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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(db_url: str, clock: FakeClock) -> Iterator[FastAPI]:
    application = create_app(
        Settings(database_url=db_url, bootstrap_admin_token=ADMIN_TOKEN), clock=clock
    )
    yield application
    application.state.services.db.dispose()


@pytest.fixture
def cloud(app: FastAPI) -> Iterator[Cloud]:
    helper = Cloud(app)
    yield helper
    helper.close()
