"""Postgres URLs in the forms apps have them, turned into what each driver accepts.

Accepted: `postgresql://`, `postgres://` (Heroku, Render, Fly), and SQLAlchemy's
`postgresql+psycopg://`, `postgresql+psycopg2://` and `postgresql+asyncpg://`. Anything else
(another database, another SQLAlchemy driver, a key=value conninfo string) is refused with the fix,
at start, rather than accepted and then failing in every job. The port, user, password,
database and query parameters (sslmode, …) are kept as they are.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from taskq.errors import ConfigError

__all__ = ["normalize_postgres_url", "sqlalchemy_url"]

LIBPQ_SCHEMES = ("postgresql", "postgres")
SQLALCHEMY_DRIVERS = ("psycopg", "psycopg2", "asyncpg")


class DsnError(ConfigError):
    """A database URL the toolkit cannot use."""


def normalize_postgres_url(url: str, setting: str = "DATABASE_URL") -> str:
    """The URL as libpq (psycopg 2 and 3) reads it: postgresql://user:password@host:port/db?…"""
    if "://" not in url:
        raise DsnError(
            f"{setting} must be a URL such as postgresql://USER:PASSWORD@HOST:5432/DBNAME; "
            f"a key=value connection string is not accepted (got one starting {url[:12]!r})"
        )
    parts = urlsplit(url)
    scheme, _, driver = parts.scheme.partition("+")
    if scheme not in LIBPQ_SCHEMES:
        raise DsnError(
            f"{setting} must point at PostgreSQL (postgresql://…), got a {parts.scheme}:// URL: "
            "the idempotency store keeps its records in Postgres"
        )
    if driver and driver not in SQLALCHEMY_DRIVERS:
        raise DsnError(
            f"{setting} names the SQLAlchemy driver {driver!r}, which the toolkit does not know: "
            f"use postgresql://, or postgresql+psycopg://, +psycopg2 or +asyncpg"
        )
    if not parts.hostname and "host=" not in parts.query:
        raise DsnError(f"{setting} has no host: postgresql://USER:PASSWORD@HOST:5432/DBNAME")
    try:
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise DsnError(
            f"{setting} has a port that is not a number: {parts.netloc.rpartition(':')[2]!r}"
        ) from None
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def sqlalchemy_url(url: str, driver: str = "psycopg", setting: str = "DATABASE_URL") -> str:
    """The same database as a SQLAlchemy URL with the given driver (psycopg, psycopg2, asyncpg)."""
    if driver not in SQLALCHEMY_DRIVERS:
        raise DsnError(f"driver must be one of {', '.join(SQLALCHEMY_DRIVERS)}, got {driver!r}")
    libpq = normalize_postgres_url(url, setting)
    return f"postgresql+{driver}{libpq.removeprefix('postgresql')}"
