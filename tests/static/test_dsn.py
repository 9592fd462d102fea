"""Every Postgres URL form apps have is accepted with its port, or refused with the fix."""

from __future__ import annotations

import pytest

from taskq.dsn import DsnError, normalize_postgres_url, sqlalchemy_url
from taskq.errors import ConfigError


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:pw@db.example:6543/shop?sslmode=require",
        "postgres://app:pw@db.example:6543/shop?sslmode=require",
        "postgresql+psycopg://app:pw@db.example:6543/shop?sslmode=require",
        "postgresql+psycopg2://app:pw@db.example:6543/shop?sslmode=require",
        "postgresql+asyncpg://app:pw@db.example:6543/shop?sslmode=require",
    ],
)
def test_libpq_heroku_and_sqlalchemy_forms_become_one_libpq_url_with_their_port(url: str):
    assert normalize_postgres_url(url) == "postgresql://app:pw@db.example:6543/shop?sslmode=require"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://app@db/shop", "must point at PostgreSQL"),
        ("sqlite:///shop.db", "must point at PostgreSQL"),
        ("postgresql+pg8000://app@db/shop", "driver 'pg8000'.*use postgresql://"),
        ("host=db dbname=shop", "must be a URL such as postgresql://"),
        ("postgresql://app@db:port/shop", "port that is not a number"),
        ("postgresql:///shop", "has no host"),
    ],
)
def test_other_forms_are_refused_at_start_with_the_fix(url: str, message: str):
    with pytest.raises(DsnError, match=message) as refused:
        normalize_postgres_url(url)
    assert isinstance(refused.value, ConfigError) and "DATABASE_URL" in str(refused.value)


def test_the_same_database_for_each_sqlalchemy_driver():
    assert sqlalchemy_url("postgres://a:b@db:5433/x", "asyncpg") == "postgresql+asyncpg://a:b@db:5433/x"
    assert sqlalchemy_url("postgresql+asyncpg://a:b@db/x", "psycopg") == "postgresql+psycopg://a:b@db/x"
