"""Idempotency records through Django's database connections (any PostgreSQL backend).

    from taskq.idempotency import Idempotency
    from taskq.idempotency.django import DjangoStore

    idempotency = Idempotency(DjangoStore(), lease_s=settings.lease_s)
    with idempotency.run("charge", order_id, args={...}) as run:
        ...
        with run.transaction():                  # transaction.atomic(), with the marker in it
            Order.objects.create(...)

The table comes from the `taskq.django` app's migration: add "taskq.django" to INSTALLED_APPS
and run `manage.py migrate`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

__all__ = ["DjangoStore"]


class DjangoStore:
    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self.using = using

    def execute(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        connection = connections[self.using]
        if connection.in_atomic_block:
            # Inside the caller's transaction a claim would be invisible to other runs until it
            # commits, and a release would be rolled back with the caller's error.
            raise RuntimeError(
                "taskq idempotency: claim outside transaction.atomic() (and with ATOMIC_REQUESTS off "
                "for the view that runs it): the claim must commit on its own"
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description is not None else []

    @contextmanager
    def transaction(self) -> Iterator[tuple[Any, Any]]:
        with transaction.atomic(using=self.using):
            connection = connections[self.using]

            def execute(sql: str, params: dict[str, Any]) -> int:
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    return cursor.rowcount

            yield connection, execute
