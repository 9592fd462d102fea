"""Effects that happen once, for any job library: claim a key, do the work, commit with a marker.

    idempotency = Idempotency(PsycopgStore(pool), lease_s=settings.lease_s)

    with idempotency.run(order_id, args={"amount_cents": amount}) as run:   # scope: the task's name
        if run.done:
            return run.result                      # an earlier run did it all
        charge = psp.charge(amount, idempotency_key=run.external_key("psp"))
        with run.transaction() as conn:            # the store's transaction: your writes…
            conn.execute("INSERT INTO orders …")
            run.result = {"charge": charge["id"]}  # …and the marker commit together

The key is (scope, business key); the scope names the kind of work: the running task's name
unless given (`scope=`). Never the message id alone: a second enqueue of the same order has another.

- A claim takes the key for a lease (the library's hard time limit, plus a margin): no other
  run can take it meanwhile. Already done: `run.done`, with the stored result. Held by a live
  run: `KeyBusyError`, which the adapters turn into "try again later" without spending a retry.
  The same key with other arguments: `KeyConflictError`, which is never retried.
- The marker is written in the same database transaction as the work's writes, and only while
  the lease holds: a run that outlived its lease (paused, frozen) cannot commit, and its
  transaction rolls back (`LeaseLostError`).
- An exception releases the lease, so that the retry can start at once; a killed run holds it
  until it expires.
- `run.external_key(name)` is the same for every run of the key (retries, redeliveries, a
  requeue, a second enqueue): give it to an API that de-duplicates on an idempotency key.
  `run.checkpoint(name, call)` records a call's result right after it returns, so that a later
  run gets the recorded value instead of calling again.

What this guarantees: database writes made in `run.transaction()` happen exactly once per key.
An external call happens at least once and, when the provider de-duplicates on the external key,
takes effect once. A provider without idempotency keys may see a call twice if a run dies
between the call and its checkpoint.

Stores (one per way an app reaches Postgres): `taskq.idempotency.psycopg.PsycopgStore` /
`AsyncPsycopgStore`, `taskq.idempotency.django.DjangoStore`,
`taskq.idempotency.sqlalchemy.SQLAlchemyStore` / `AsyncSQLAlchemyStore`. The table is created by
a migration (see `schema_sql`), never by an import.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Protocol, TypeVar

from taskq.context import current_task_name
from taskq.idempotency._sql import DEFAULT_TABLE, Row, schema_sql, statements, to_json
from taskq.retry import Permanent, RetryLater

__all__ = [
    "AsyncIdempotency",
    "AsyncRun",
    "AsyncStore",
    "Idempotency",
    "IdempotencyError",
    "KeyBusyError",
    "KeyConflictError",
    "LeaseLostError",
    "Run",
    "Store",
    "external_key",
    "fingerprint",
    "identity_of",
    "schema_sql",
]

T = TypeVar("T")
log = logging.getLogger("taskq.idempotency")
# Set on an exception raised inside a run, so that a dead letter can name the key it was for.
IDENTITY_ATTRIBUTE = "taskq_idempotency"
# A claim that lost a race with a concurrent first insert sees no row; it asks again this often.
CLAIM_ATTEMPTS = 3


class IdempotencyError(Exception):
    """Base of the outcomes a caller of the idempotency helper may have to handle."""


class KeyConflictError(IdempotencyError, Permanent):
    """The key was claimed with other arguments: a bug or a reused key, never retried."""


class KeyBusyError(IdempotencyError, RetryLater):
    """Another run holds the key's lease: try again after retry_after_s, without spending a retry."""


class LeaseLostError(IdempotencyError, RetryLater):
    """This run's lease ended (it expired, or another run took the key) before it committed: its
    transaction was rolled back. The next run finds the key done, or takes it."""


def fingerprint(args: Any) -> str:
    """sha256 of the arguments as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def external_key(scope: str, key: str, name: str = "") -> str:
    """The key to hand to an external API for (scope, key) and one call of it (name): stable
    across every run of the key, and free of the business key itself (it may be personal data)."""
    digest = hashlib.sha256("\x1f".join(("taskq", scope, key, name)).encode()).hexdigest()
    return f"tq-{digest[:40]}"


def identity_of(error: BaseException) -> tuple[str, str] | None:
    """(scope, key) of the run an exception escaped from, if it escaped from one."""
    return getattr(error, IDENTITY_ATTRIBUTE, None)


def _mark(error: BaseException, scope: str, key: str) -> None:
    with contextlib.suppress(AttributeError, TypeError):  # an exception type with __slots__
        setattr(error, IDENTITY_ATTRIBUTE, (scope, key))


class Store(Protocol):
    """How the helper reaches Postgres, synchronously. SQL comes with %(name)s placeholders."""

    def execute(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        """Run one statement on its own (committed at once, outside any caller transaction)."""

    def transaction(self) -> Any:
        """A context manager opening the caller's transaction; it yields (handle, execute), where
        handle is what the caller writes with and execute(sql, params) -> rowcount runs in it."""


class AsyncStore(Protocol):
    async def execute(self, sql: str, params: dict[str, Any]) -> list[tuple]: ...

    def transaction(self) -> Any:
        """An async context manager yielding (handle, execute), execute being a coroutine function."""


def _scope_and_key(key: str, scope: str | None) -> tuple[str, str]:
    scope = scope or current_task_name()
    if not scope:
        raise ValueError("outside a job, name the idempotency scope: run(key, scope=...)")
    if key is None or str(key) == "":
        raise ValueError(f"{scope}: an idempotency key must be a non-empty string")
    return scope, str(key)


def _outcome(scope: str, key: str, fp: str, row: Row | None) -> str:
    """'claimed', 'done' or 'race' for a claim's row; raises for a conflict or a live holder."""
    if row is None:
        return "race"
    if row.fingerprint != fp:
        raise KeyConflictError(
            f"{scope} {key!r} was already claimed with other arguments: an idempotency key names one "
            "piece of work, so reusing it for another is refused (use a new key)"
        )
    if row.state == "done":
        return "done"
    if row.held:
        return "claimed"
    if row.lease_left_s is None or row.lease_left_s <= 0:
        return "race"  # freed between our INSERT and our SELECT: ask again
    raise KeyBusyError(
        f"{scope} {key!r} is held by another run for {row.lease_left_s:.1f} s more",
        retry_after_s=row.lease_left_s,
    )


class _RunBase:
    def __init__(self, scope: str, key: str, token: str, row: Row | None) -> None:
        self.scope = scope
        self.key = key
        self.token = token
        self.done = row is not None and row.state == "done"
        self.result: Any = row.result if row is not None else None
        self.checkpoints: dict[str, Any] = dict(row.checkpoints) if row is not None else {}
        self._committed = self.done

    def external_key(self, name: str = "") -> str:
        return external_key(self.scope, self.key, name)

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {"scope": self.scope, "key": self.key, "token": self.token, **extra}

    def _check_open(self) -> None:
        if self._committed:
            raise RuntimeError(f"{self.scope} {self.key!r} is already done: check run.done before working")

    def _lost(self) -> LeaseLostError:
        return LeaseLostError(
            f"{self.scope} {self.key!r}: this run's lease ended before it committed (it ran past its "
            "lease, or another run took the key); its transaction was rolled back",
            retry_after_s=0.2,
        )


class Run(_RunBase):
    """One claimed run of a key (or a key already done: `done` is True)."""

    def __init__(self, owner: Idempotency, scope: str, key: str, token: str, row: Row | None) -> None:
        super().__init__(scope, key, token, row)
        self._owner = owner

    def checkpoint(self, name: str, call: Callable[[], T]) -> T:
        """call()'s value, recorded as soon as it returns; a later run of the key gets the recorded
        value and does not call again. The value must be JSON."""
        if name in self.checkpoints:
            return self.checkpoints[name]
        self._check_open()
        value = call()
        if not self._owner.store.execute(
            self._owner.sql["checkpoint"], self._params(name=name, value=to_json(value))
        ):
            raise self._lost()
        self.checkpoints[name] = value
        return value

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """The store's transaction, yielding what to write with; the key is marked done in it, with
        run.result, and it commits only if this run still holds its lease."""
        self._check_open()
        with self._owner.store.transaction() as (handle, execute):
            yield handle
            if execute(self._owner.sql["mark_done"], self._params(result=to_json(self.result))) != 1:
                raise self._lost()
        self.done = self._committed = True

    def complete(self, result: Any = None) -> None:
        """Mark the key done with no writes of the caller's (the effect was external only)."""
        if result is not None:
            self.result = result
        with self.transaction():
            pass


class Idempotency:
    """Claims and markers in one store; lease_s comes from the library's hard time limit
    (`settings.lease_s`), so a run that may still be running always holds its key."""

    def __init__(self, store: Store, *, lease_s: float, table: str = DEFAULT_TABLE) -> None:
        if not lease_s > 0:
            raise ValueError(f"lease_s must be above 0, got {lease_s}")
        self.store = store
        self.lease_s = float(lease_s)
        self.table = table
        self.sql = statements(table)

    def _claim(self, scope: str, key: str, fp: str, token: str) -> Row:
        params = {"scope": scope, "key": key, "fingerprint": fp, "token": token, "lease_s": self.lease_s}
        for _ in range(CLAIM_ATTEMPTS):
            rows = self.store.execute(self.sql["claim"], params)
            row = Row.read(rows[0], token) if rows else None
            if _outcome(scope, key, fp, row) != "race":
                return row
        raise KeyBusyError(f"{scope} {key!r} is contended: try again", retry_after_s=0.2)

    @contextmanager
    def run(self, key: str, args: Any = None, *, scope: str | None = None) -> Iterator[Run]:
        """Claim (scope, key) for work on args; yield the Run. Leaving the block normally marks the
        key done if the work did not (`run.transaction()`); an exception releases the lease."""
        scope, key = _scope_and_key(key, scope)
        token, fp = uuid.uuid4().hex, fingerprint(args)
        try:
            run = Run(self, scope, key, token, self._claim(scope, key, fp, token))
        except IdempotencyError as error:
            _mark(error, scope, key)
            raise
        if run.done:
            yield run
            return
        try:
            yield run
            if not run._committed:
                run.complete()
        except BaseException as error:
            _mark(error, scope, key)
            if not run._committed:
                self._release(run)
            raise

    def _release(self, run: Run) -> None:
        try:
            self.store.execute(self.sql["release"], run._params())
        except Exception as error:  # noqa: BLE001 (the lease then expires on its own; the job's error matters)
            log.warning("could not release %s %r (its lease will expire): %s", run.scope, run.key, error)

    def done_keys(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (scope, key) pairs are done: for `taskq dlq requeue`."""
        if not pairs:
            return set()
        scopes, keys = [p[0] for p in pairs], [p[1] for p in pairs]
        rows = self.store.execute(self.sql["done_keys"], {"scopes": scopes, "keys": keys})
        return {(scope, key) for scope, key in rows}


class AsyncRun(_RunBase):
    """One claimed run of a key, for asyncio code (see Run)."""

    def __init__(self, owner: AsyncIdempotency, scope: str, key: str, token: str, row: Row | None) -> None:
        super().__init__(scope, key, token, row)
        self._owner = owner

    async def checkpoint(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        if name in self.checkpoints:
            return self.checkpoints[name]
        self._check_open()
        value = await call()
        if not await self._owner.store.execute(
            self._owner.sql["checkpoint"], self._params(name=name, value=to_json(value))
        ):
            raise self._lost()
        self.checkpoints[name] = value
        return value

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        self._check_open()
        async with self._owner.store.transaction() as (handle, execute):
            yield handle
            if await execute(self._owner.sql["mark_done"], self._params(result=to_json(self.result))) != 1:
                raise self._lost()
        self.done = self._committed = True

    async def complete(self, result: Any = None) -> None:
        if result is not None:
            self.result = result
        async with self.transaction():
            pass


class AsyncIdempotency:
    """Idempotency for asyncio code: the same records and semantics, with an AsyncStore."""

    def __init__(self, store: AsyncStore, *, lease_s: float, table: str = DEFAULT_TABLE) -> None:
        if not lease_s > 0:
            raise ValueError(f"lease_s must be above 0, got {lease_s}")
        self.store = store
        self.lease_s = float(lease_s)
        self.table = table
        self.sql = statements(table)

    async def _claim(self, scope: str, key: str, fp: str, token: str) -> Row:
        params = {"scope": scope, "key": key, "fingerprint": fp, "token": token, "lease_s": self.lease_s}
        for _ in range(CLAIM_ATTEMPTS):
            rows = await self.store.execute(self.sql["claim"], params)
            row = Row.read(rows[0], token) if rows else None
            if _outcome(scope, key, fp, row) != "race":
                return row
        raise KeyBusyError(f"{scope} {key!r} is contended: try again", retry_after_s=0.2)

    @asynccontextmanager
    async def run(self, key: str, args: Any = None, *, scope: str | None = None) -> AsyncIterator[AsyncRun]:
        scope, key = _scope_and_key(key, scope)
        token, fp = uuid.uuid4().hex, fingerprint(args)
        try:
            run = AsyncRun(self, scope, key, token, await self._claim(scope, key, fp, token))
        except IdempotencyError as error:
            _mark(error, scope, key)
            raise
        if run.done:
            yield run
            return
        try:
            yield run
            if not run._committed:
                await run.complete()
        except BaseException as error:
            _mark(error, scope, key)
            if not run._committed:
                await self._release(run)
            raise

    async def _release(self, run: AsyncRun) -> None:
        try:
            await self.store.execute(self.sql["release"], run._params())
        except Exception as error:  # noqa: BLE001 (the lease then expires on its own; the job's error matters)
            log.warning("could not release %s %r (its lease will expire): %s", run.scope, run.key, error)

    async def done_keys(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        if not pairs:
            return set()
        scopes, keys = [p[0] for p in pairs], [p[1] for p in pairs]
        rows = await self.store.execute(self.sql["done_keys"], {"scopes": scopes, "keys": keys})
        return {(scope, key) for scope, key in rows}
