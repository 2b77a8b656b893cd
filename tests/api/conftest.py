"""Fixtures: one app per test on sqlite or postgresql (db_url comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from rtkvm.api.app import create_app
from rtkvm.api.testing import ADMIN_TOKEN, Cloud, FakeClock
from rtkvm.settings import Settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(db_url: str, clock: FakeClock, tmp_path: Path) -> Iterator[FastAPI]:
    settings = Settings(
        database_url=db_url,
        bootstrap_admin_token=ADMIN_TOKEN,
        image_store_dir=str(tmp_path / "image-store"),
    )
    application = create_app(settings, clock=clock)
    yield application
    application.state.services.db.dispose()


@pytest.fixture
def cloud(app: FastAPI) -> Iterator[Cloud]:
    helper = Cloud(app)
    yield helper
    helper.close()
