"""Idempotency records through psycopg 3: a connection string, or the app's own pool.

    store = PsycopgStore("postgresql://…")           # one connection per process and thread
    store = PsycopgStore(pool)                        # psycopg_pool.ConnectionPool
    astore = AsyncPsycopgStore(async_pool)            # psycopg_pool.AsyncConnectionPool (or a URL)

`run.transaction()` yields the psycopg connection, inside a transaction that also writes the marker.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg

from taskq.dsn import normalize_postgres_url

__all__ = ["AsyncPsycopgStore", "PsycopgStore", "migrate"]

# An advisory lock key, so that two migrations started together do not race on CREATE TABLE IF
# NOT EXISTS (which is not safe under concurrency in Postgres).
MIGRATION_LOCK = 7340427


def _rows(cursor: Any) -> list[tuple]:
    return cursor.fetchall() if cursor.description is not None else []


class PsycopgStore:
    def __init__(self, source: Any, *, connect_timeout: int = 5) -> None:
        """source: a Postgres URL, or a psycopg_pool.ConnectionPool the app already has."""
        self._pool = None if isinstance(source, str) else source
        self._url = normalize_postgres_url(source) if isinstance(source, str) else None
        self._connect_timeout = connect_timeout
        self._local = threading.local()

    def _connection(self) -> psycopg.Connection:
        """One autocommit connection per process and thread: forked children must not share their
        parent's socket, and threads would queue behind one connection's lock."""
        conn, pid = getattr(self._local, "connection", None), getattr(self._local, "pid", None)
        if conn is None or conn.closed or conn.broken or pid != os.getpid():
            conn = psycopg.connect(self._url, autocommit=True, connect_timeout=self._connect_timeout)
            self._local.connection, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _connected(self) -> Iterator[psycopg.Connection]:
        if self._pool is not None:
            with self._pool.connection() as conn:
                yield conn
        else:
            yield self._connection()

    def execute(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        with self._connected() as conn:
            if conn.autocommit:
                return _rows(conn.execute(sql, params))
            with conn.transaction():
                return _rows(conn.execute(sql, params))

    @contextmanager
    def transaction(self) -> Iterator[tuple[psycopg.Connection, Any]]:
        with self._connected() as conn, conn.transaction():
            yield conn, lambda sql, params: conn.execute(sql, params).rowcount


class AsyncPsycopgStore:
    def __init__(self, source: Any, *, max_size: int = 10) -> None:
        """source: a psycopg_pool.AsyncConnectionPool the app already has, or a Postgres URL (a
        pool is then opened at first use and closed with `aclose()`)."""
        if isinstance(source, str):
            from psycopg_pool import AsyncConnectionPool

            url = normalize_postgres_url(source)
            self._pool = AsyncConnectionPool(url, min_size=1, max_size=max_size, open=False)
            self._owned = True
        else:
            self._pool, self._owned = source, False
        self._opened = False

    async def _ready(self) -> Any:
        if self._owned and not self._opened:
            await self._pool.open(wait=True, timeout=30)
            self._opened = True
        return self._pool

    async def aclose(self) -> None:
        if self._owned and self._opened:
            await self._pool.close()
            self._opened = False

    async def execute(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        pool = await self._ready()
        async with pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall() if cursor.description is not None else []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[psycopg.AsyncConnection, Any]]:
        pool = await self._ready()
        async with pool.connection() as conn, conn.transaction():

            async def execute(sql: str, params: dict[str, Any]) -> int:
                return (await conn.execute(sql, params)).rowcount

            yield conn, execute


def migrate(conn: psycopg.Connection, *statements: str) -> None:
    """Run schema statements (e.g. `taskq.idempotency.schema_sql()`) under the migration lock."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        for statement in statements:
            conn.execute(statement)
