"""The real OpenStack Placement (the pinned release, from PyPI) on the tests' PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rtkvm.db.pgtest import PostgresServer
from rtkvm.openstack.placement import PlacementClient
from rtkvm.testing.placement import TOKEN, PlacementService


@pytest.fixture(scope="session")
def placement_service(pg_server: PostgresServer) -> Iterator[PlacementService]:
    service = PlacementService(pg_server).start("tests")
    yield service
    service.stop()


@pytest.fixture
def placement(placement_service: PlacementService) -> Iterator[PlacementClient]:
    client = PlacementClient(placement_service.endpoint, TOKEN)
    yield client
    client.close()
