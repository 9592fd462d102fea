"""The toolkit against real Postgres and Redis servers (containers of the stacks' images)."""

from __future__ import annotations

import pytest

from tests import services
from tests.conftest import REPO

HERE = REPO / "tests" / "toolkit"


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def postgres_url():
    with services.postgres() as url:
        import psycopg

        from taskq.idempotency import schema_sql
        from taskq.idempotency.psycopg import migrate

        with psycopg.connect(url) as conn:
            migrate(conn, schema_sql())
        yield url


@pytest.fixture(scope="session")
def redis_url():
    with services.redis() as url:
        yield url
