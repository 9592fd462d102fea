"""Idempotency records through SQLAlchemy 2: an Engine or a sessionmaker (sync or async).

    store = SQLAlchemyStore(SessionLocal)          # or an Engine
    astore = AsyncSQLAlchemyStore(async_session)   # or an AsyncEngine

`run.transaction()` yields a Session in `session.begin()`; the marker is written in the same
transaction, which commits when the block ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import cache
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from taskq.idempotency._sql import named_to_colon

__all__ = ["AsyncSQLAlchemyStore", "SQLAlchemyStore"]


@cache
def _text(sql: str) -> Any:
    return text(named_to_colon(sql))


class SQLAlchemyStore:
    def __init__(self, source: Engine | sessionmaker) -> None:
        if isinstance(source, Engine):
            self._engine, self._sessions = source, sessionmaker(source)
        else:
            self._engine, self._sessions = source.kw["bind"], source

    def execute(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            result = conn.execute(_text(sql), params)
            return [tuple(row) for row in result] if result.returns_rows else []

    @contextmanager
    def transaction(self) -> Iterator[tuple[Session, Any]]:
        with self._sessions() as session, session.begin():
            yield session, lambda sql, params: session.execute(_text(sql), params).rowcount


class AsyncSQLAlchemyStore:
    def __init__(self, source: AsyncEngine | async_sessionmaker) -> None:
        if isinstance(source, AsyncEngine):
            self._engine, self._sessions = source, async_sessionmaker(source)
        else:
            self._engine, self._sessions = source.kw["bind"], source

    async def execute(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            result = await conn.execute(_text(sql), params)
            return [tuple(row) for row in result] if result.returns_rows else []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[AsyncSession, Any]]:
        async with self._sessions() as session, session.begin():

            async def execute(sql: str, params: dict[str, Any]) -> int:
                return (await session.execute(_text(sql), params)).rowcount

            yield session, execute
