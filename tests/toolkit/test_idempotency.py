"""The idempotency helper against a real Postgres, through every store: psycopg 3 (a URL and a
pool), Django, SQLAlchemy, and the async ones (psycopg 3, SQLAlchemy on asyncpg and psycopg)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from taskq.idempotency import (
    AsyncIdempotency,
    Idempotency,
    KeyBusyError,
    KeyConflictError,
    LeaseLostError,
    external_key,
    identity_of,
)
from taskq.retry import Permanent, RetryLater

LEASE_S = 30


def new_key() -> str:
    return f"k-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def orders(postgres_url: str) -> str:
    """A table for the caller's own writes, without a unique constraint: a second insert shows."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS test_orders (id bigserial PRIMARY KEY, key text NOT NULL)")
    return "test_orders"


def order_count(postgres_url: str, key: str) -> int:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM test_orders WHERE key = %s", (key,)).fetchone()[0]


# --- the sync stores, each with how the caller writes an order inside run.transaction() -------
def psycopg_url_store(url: str):
    from taskq.idempotency.psycopg import PsycopgStore

    def insert(handle, key):
        handle.execute("INSERT INTO test_orders (key) VALUES (%s)", (key,))

    return PsycopgStore(url), insert, lambda: None


def psycopg_pool_store(url: str):
    from psycopg_pool import ConnectionPool

    from taskq.idempotency.psycopg import PsycopgStore

    pool = ConnectionPool(url, min_size=1, max_size=8, open=True)

    def insert(handle, key):
        handle.execute("INSERT INTO test_orders (key) VALUES (%s)", (key,))

    return PsycopgStore(pool), insert, pool.close


DJANGO_READY = threading.Lock()


def django_store(url: str):
    import django
    from django.conf import settings

    from taskq.dsn import normalize_postgres_url
    from taskq.idempotency.django import DjangoStore

    with DJANGO_READY:
        if not settings.configured:
            from urllib.parse import urlsplit

            parts = urlsplit(normalize_postgres_url(url))
            settings.configure(
                DATABASES={
                    "default": {
                        "ENGINE": "django.db.backends.postgresql",
                        "NAME": parts.path.lstrip("/"),
                        "USER": parts.username,
                        "PASSWORD": parts.password,
                        "HOST": parts.hostname,
                        "PORT": parts.port,
                    }
                },
                INSTALLED_APPS=["taskq.django"],
                USE_TZ=True,
            )
            django.setup()
            from django.core.management import call_command

            call_command("migrate", "taskq", verbosity=0)  # the app's migration: no error when it exists

    def insert(handle, key):
        with handle.cursor() as cursor:
            cursor.execute("INSERT INTO test_orders (key) VALUES (%s)", [key])

    def close():
        from django.db import connections

        connections.close_all()

    return DjangoStore(), insert, close


def sqlalchemy_store(url: str):
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import sessionmaker

    from taskq.dsn import sqlalchemy_url
    from taskq.idempotency.sqlalchemy import SQLAlchemyStore

    engine = create_engine(sqlalchemy_url(url, "psycopg"))

    def insert(session, key):
        session.execute(text("INSERT INTO test_orders (key) VALUES (:key)"), {"key": key})

    return SQLAlchemyStore(sessionmaker(engine)), insert, engine.dispose


SYNC_STORES = {
    "psycopg-url": psycopg_url_store,
    "psycopg-pool": psycopg_pool_store,
    "django": django_store,
    "sqlalchemy": sqlalchemy_store,
}


@pytest.fixture(params=sorted(SYNC_STORES))
def sync(request, postgres_url: str, orders: str):
    store, insert, close = SYNC_STORES[request.param](postgres_url)
    yield Idempotency(store, lease_s=LEASE_S), insert
    close()


def charge_once(idem: Idempotency, insert: Callable, key: str, calls: list, args: Any = None) -> Any:
    """A user's task: an external call, then an order row, committed with the marker."""
    with idem.run(key, scope="charge", args=args or {"amount": 500}) as run:
        if run.done:
            return run.result
        calls.append(run.external_key())
        with run.transaction() as handle:
            insert(handle, key)
            run.result = {"order": key}
        return run.result


def test_a_key_is_worked_once_and_a_second_run_gets_the_stored_result(sync, postgres_url):
    idem, insert = sync
    key, calls = new_key(), []
    assert charge_once(idem, insert, key, calls) == {"order": key}
    assert charge_once(idem, insert, key, calls) == {"order": key}
    assert len(calls) == 1 and order_count(postgres_url, key) == 1


def test_an_exception_rolls_back_the_writes_and_releases_the_key_for_the_retry(sync, postgres_url):
    idem, insert = sync
    key = new_key()
    with (
        pytest.raises(ZeroDivisionError) as raised,
        idem.run(key, scope="charge", args={"amount": 500}) as run,
        run.transaction() as handle,
    ):
        insert(handle, key)
        1 / 0  # noqa: B018
    assert identity_of(raised.value) == ("charge", key)
    assert order_count(postgres_url, key) == 0
    # Released: the retry takes the key at once, rather than waiting for the lease.
    assert charge_once(idem, insert, key, []) == {"order": key}
    assert order_count(postgres_url, key) == 1


def test_a_key_held_by_a_live_run_is_busy_until_its_lease_ends(sync):
    idem, _insert = sync
    key = new_key()
    with idem.run(key, scope="charge"):
        with pytest.raises(KeyBusyError) as busy, idem.run(key, scope="charge"):
            pass
        assert isinstance(busy.value, RetryLater)
        assert LEASE_S - 5 < busy.value.retry_after_s <= LEASE_S


def test_the_same_key_with_other_arguments_is_refused_and_never_retried(sync):
    idem, insert = sync
    key = new_key()
    charge_once(idem, insert, key, [], args={"amount": 500})
    with pytest.raises(KeyConflictError, match="other arguments") as refused:
        charge_once(idem, insert, key, [], args={"amount": 700})
    assert isinstance(refused.value, Permanent)
    assert identity_of(refused.value) == ("charge", key)


def test_a_run_that_outlived_its_lease_cannot_commit_and_its_writes_roll_back(sync, postgres_url):
    """Paused past its lease while another run took the key and finished: the late commit fails."""
    idem, insert = sync
    short = Idempotency(idem.store, lease_s=1)
    key = new_key()
    with pytest.raises(LeaseLostError), short.run(key, scope="charge", args={"amount": 500}) as late:
        time.sleep(1.3)  # the lease ends; another run takes the key and commits
        assert charge_once(short, insert, key, []) == {"order": key}
        with late.transaction() as handle:
            insert(handle, key)
    assert order_count(postgres_url, key) == 1


def test_a_run_past_its_lease_cannot_commit_even_when_nobody_took_the_key(sync, postgres_url):
    idem, insert = sync
    short = Idempotency(idem.store, lease_s=1)
    key = new_key()
    with pytest.raises(LeaseLostError), short.run(key, scope="charge", args={"amount": 500}) as late:
        time.sleep(1.3)
        with late.transaction() as handle:
            insert(handle, key)
    assert order_count(postgres_url, key) == 0
    assert charge_once(short, insert, key, []) == {"order": key}  # the next run does it


def test_a_checkpoint_is_not_called_again_by_a_later_run(sync):
    idem, _ = sync
    key, calls = new_key(), []

    def call_provider() -> dict:
        calls.append(1)
        return {"charge": f"ch_{len(calls)}"}

    with pytest.raises(RuntimeError), idem.run(key, scope="charge") as run:
        assert run.checkpoint("psp", call_provider) == {"charge": "ch_1"}
        raise RuntimeError("crashed after the call")
    with idem.run(key, scope="charge") as run:
        assert run.checkpoint("psp", call_provider) == {"charge": "ch_1"}
    assert calls == [1]


def test_leaving_the_block_without_a_transaction_marks_the_key_done(sync):
    idem, _ = sync
    key = new_key()
    with idem.run(key, scope="mail") as run:
        run.result = "sent"
    with idem.run(key, scope="mail") as again:
        assert again.done and again.result == "sent"


def test_done_keys_names_the_done_ones(sync):
    idem, insert = sync
    done, open_ = new_key(), new_key()
    charge_once(idem, insert, done, [])
    with pytest.raises(ValueError), idem.run(open_, scope="charge", args={"amount": 500}):
        raise ValueError
    assert idem.done_keys([("charge", done), ("charge", open_), ("other", done)]) == {("charge", done)}


def test_under_contention_each_key_has_one_winner(sync, postgres_url):
    """Eight threads race over twenty keys: each key's work is done once, every loser was told
    the key is busy or done, and no thread saw an error."""
    idem, insert = sync
    keys = [new_key() for _ in range(20)]
    outcomes: dict[str, list[str]] = {key: [] for key in keys}
    lock = threading.Lock()

    def worker(order: list[str]) -> None:
        for key in order:
            try:
                with idem.run(key, scope="charge", args={"amount": 1}) as run:
                    if run.done:
                        outcome = "done"
                    else:
                        with run.transaction() as handle:
                            insert(handle, key)
                        outcome = "worked"
            except KeyBusyError:
                outcome = "busy"
            with lock:
                outcomes[key].append(outcome)

    orders = [keys[i:] + keys[:i] for i in range(0, 16, 2)]
    with ThreadPoolExecutor(len(orders)) as pool:
        list(pool.map(worker, orders))
    for key in keys:
        assert outcomes[key].count("worked") == 1, outcomes[key]
        assert len(outcomes[key]) == len(orders)
        assert order_count(postgres_url, key) == 1


def test_the_external_key_is_stable_and_hides_the_business_key():
    first = external_key("charge", "order-1", "psp")
    assert first == external_key("charge", "order-1", "psp")
    assert first != external_key("charge", "order-2", "psp") != external_key("refund", "order-1", "psp")
    assert "order-1" not in first and len(first) <= 64


# --- async stores --------------------------------------------------------------------------
def async_psycopg_store(url: str):
    from psycopg_pool import AsyncConnectionPool

    from taskq.idempotency.psycopg import AsyncPsycopgStore

    pool = AsyncConnectionPool(url, min_size=1, max_size=4, open=False)

    async def open_() -> None:
        await pool.open(wait=True)

    async def insert(conn, key):
        await conn.execute("INSERT INTO test_orders (key) VALUES (%s)", (key,))

    return AsyncPsycopgStore(pool), insert, open_, pool.close


def async_sqlalchemy_store(driver: str):
    def make(url: str):
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        from taskq.dsn import sqlalchemy_url
        from taskq.idempotency.sqlalchemy import AsyncSQLAlchemyStore

        engine = create_async_engine(sqlalchemy_url(url, driver))

        async def open_() -> None:
            pass

        async def insert(session, key):
            await session.execute(text("INSERT INTO test_orders (key) VALUES (:key)"), {"key": key})

        return AsyncSQLAlchemyStore(async_sessionmaker(engine)), insert, open_, engine.dispose

    return make


ASYNC_STORES = {
    "psycopg-async": async_psycopg_store,
    "sqlalchemy-asyncpg": async_sqlalchemy_store("asyncpg"),
    "sqlalchemy-psycopg-async": async_sqlalchemy_store("psycopg"),
}


@contextmanager
def async_store(name: str, url: str):
    store, insert, open_, close = ASYNC_STORES[name](url)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(open_())
    try:
        yield loop, AsyncIdempotency(store, lease_s=LEASE_S), insert
    finally:
        loop.run_until_complete(close())
        loop.close()


async def charge_once_async(idem: AsyncIdempotency, insert, key: str, args: Any = None) -> Any:
    async with idem.run(key, scope="charge", args=args or {"amount": 500}) as run:
        if run.done:
            return run.result
        async with run.transaction() as handle:
            await insert(handle, key)
            run.result = {"order": key}
        return run.result


@pytest.mark.parametrize("name", sorted(ASYNC_STORES))
def test_async_stores_work_once_refuse_conflicts_and_roll_back_late_commits(name, postgres_url, orders):
    with async_store(name, postgres_url) as (loop, idem, insert):
        key = new_key()
        assert loop.run_until_complete(charge_once_async(idem, insert, key)) == {"order": key}
        assert loop.run_until_complete(charge_once_async(idem, insert, key)) == {"order": key}
        assert order_count(postgres_url, key) == 1
        with pytest.raises(KeyConflictError):
            loop.run_until_complete(charge_once_async(idem, insert, key, args={"amount": 1}))

        async def busy() -> float:
            async with idem.run(other := new_key(), scope="charge"):
                try:
                    async with idem.run(other, scope="charge"):
                        pass
                except KeyBusyError as error:
                    return error.retry_after_s
            return -1.0

        assert loop.run_until_complete(busy()) > LEASE_S - 5

        async def late_commit(key: str) -> None:
            short = AsyncIdempotency(idem.store, lease_s=1)
            async with short.run(key, scope="charge", args={"amount": 500}) as run:
                await asyncio.sleep(1.3)
                async with run.transaction() as handle:
                    await insert(handle, key)

        late = new_key()
        with pytest.raises(LeaseLostError):
            loop.run_until_complete(late_commit(late))
        assert order_count(postgres_url, late) == 0

        async def released(key: str) -> bool:
            try:
                async with idem.run(key, scope="charge"):
                    raise ValueError
            except ValueError:
                pass
            async with idem.run(key, scope="charge") as run:
                return not run.done

        assert loop.run_until_complete(released(new_key()))


class CountingStore:
    """A store that counts the statements the helper sends, on its own or in the transaction."""

    def __init__(self, store) -> None:
        self.store, self.statements = store, 0

    def execute(self, sql, params):
        self.statements += 1
        return self.store.execute(sql, params)

    @contextmanager
    def transaction(self):
        with self.store.transaction() as (handle, execute):

            def counted(sql, params):
                self.statements += 1
                return execute(sql, params)

            yield handle, counted


def test_the_helper_costs_two_round_trips_per_job_beyond_the_callers_writes(sync):
    """A claim, and the marker in the caller's transaction; a run that finds the key done, one."""
    idem, insert = sync
    counting = CountingStore(idem.store)
    measured = Idempotency(counting, lease_s=LEASE_S)
    key = new_key()
    charge_once(measured, insert, key, [])
    assert counting.statements == 2
    charge_once(measured, insert, key, [])
    assert counting.statements == 3
