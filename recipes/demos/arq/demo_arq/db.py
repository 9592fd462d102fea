"""The demo's tables in Postgres: attempts, effects, scheduler ticks, and the shop's orders.

`effects` and `ticks` are written so that a job run twice (a redelivery after a crash) changes
nothing the second time: they are keyed, and the insert does nothing on conflict. `orders` has no
unique constraint on purpose: a `charge` whose effect happened twice would show two rows; only the
toolkit's idempotency helper keeps it at one.
"""

from __future__ import annotations

import os
import threading

import psycopg

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id         bigserial PRIMARY KEY,
    key        text NOT NULL,
    job_id     text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS attempts_key_idx ON attempts (key);
CREATE TABLE IF NOT EXISTS effects (
    key         text PRIMARY KEY,
    job_id      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS ticks (
    slot        bigint PRIMARY KEY,
    runs        integer NOT NULL,
    last_run_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS orders (
    id           bigserial PRIMARY KEY,
    key          text NOT NULL,
    charge_id    text NOT NULL,
    amount_cents integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS orders_key_idx ON orders (key);
CREATE TABLE IF NOT EXISTS digests (
    id     bigserial PRIMARY KEY,
    ran_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""

_local = threading.local()


def connection(dsn: str) -> psycopg.Connection:
    """One connection per process and thread: prefork children must not share their parent's
    socket, and threaded workers (Dramatiq's) would queue up behind one connection's lock."""
    conn, pid = getattr(_local, "connection", None), getattr(_local, "pid", None)
    if conn is None or conn.closed or conn.broken or pid != os.getpid():
        _local.connection = conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
        _local.pid = os.getpid()
    return conn


# One statement each, so that they are safe on a connection in autocommit mode and need no
# transaction; the sync functions serve threaded and forking workers, the async ones Arq and the API.
RECORD_ATTEMPT = (
    "WITH new AS (INSERT INTO attempts (key, job_id) VALUES (%(key)s, %(job_id)s) RETURNING 1) "
    "SELECT count(*) + 1 FROM attempts WHERE key = %(key)s"
)
RECORD_EFFECT = "INSERT INTO effects (key, job_id) VALUES (%(key)s, %(job_id)s) ON CONFLICT (key) DO NOTHING"
# Counts every run rather than ignoring repeats, so that a slot fired twice shows up.
RECORD_TICK = (
    "INSERT INTO ticks (slot, runs) VALUES (%(slot)s, 1) "
    "ON CONFLICT (slot) DO UPDATE SET runs = ticks.runs + 1, last_run_at = clock_timestamp()"
)
EFFECTS_OF = (
    "SELECT (SELECT count(*) FROM attempts WHERE key = %(key)s), "
    "(SELECT count(*) FROM effects WHERE key = %(key)s)"
)
TICK_COUNTS = "SELECT count(*), coalesce(sum(runs), 0) FROM ticks"
INSERT_ORDER = (
    "INSERT INTO orders (key, charge_id, amount_cents) VALUES (%(key)s, %(charge_id)s, %(amount_cents)s)"
)
CHARGE_COUNTS = (
    "SELECT (SELECT count(*) FROM attempts WHERE key = %(key)s), "
    "(SELECT count(*) FROM orders WHERE key = %(key)s)"
)


def record_attempt(conn: psycopg.Connection, key: str, job_id: str) -> int:
    """Record that an execution started; return its number for this key, from 1."""
    return int(conn.execute(RECORD_ATTEMPT, {"key": key, "job_id": job_id}).fetchone()[0])


def record_effect(conn: psycopg.Connection, key: str, job_id: str) -> bool:
    """Record the job's effect once per key; False when an earlier run already did."""
    return conn.execute(RECORD_EFFECT, {"key": key, "job_id": job_id}).rowcount == 1


def record_tick(conn: psycopg.Connection, slot: int) -> None:
    conn.execute(RECORD_TICK, {"slot": slot})


async def record_attempt_async(conn: psycopg.AsyncConnection, key: str, job_id: str) -> int:
    row = await (await conn.execute(RECORD_ATTEMPT, {"key": key, "job_id": job_id})).fetchone()
    return int(row[0])


async def record_effect_async(conn: psycopg.AsyncConnection, key: str, job_id: str) -> bool:
    return (await conn.execute(RECORD_EFFECT, {"key": key, "job_id": job_id})).rowcount == 1


async def record_tick_async(conn: psycopg.AsyncConnection, slot: int) -> None:
    await conn.execute(RECORD_TICK, {"slot": slot})


async def effects_of(conn: psycopg.AsyncConnection, key: str) -> dict[str, int | str]:
    row = await (await conn.execute(EFFECTS_OF, {"key": key})).fetchone()
    return {"key": key, "attempts": int(row[0]), "effects": int(row[1])}


def record_digest(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO digests DEFAULT VALUES")


async def record_digest_async(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("INSERT INTO digests DEFAULT VALUES")


def insert_order(conn: psycopg.Connection, key: str, charge_id: str, amount_cents: int) -> None:
    conn.execute(INSERT_ORDER, {"key": key, "charge_id": charge_id, "amount_cents": amount_cents})


async def insert_order_async(
    conn: psycopg.AsyncConnection, key: str, charge_id: str, amount_cents: int
) -> None:
    await conn.execute(INSERT_ORDER, {"key": key, "charge_id": charge_id, "amount_cents": amount_cents})


async def charge_counts(conn: psycopg.AsyncConnection, key: str) -> dict[str, int]:
    row = await (await conn.execute(CHARGE_COUNTS, {"key": key})).fetchone()
    return {"attempts": int(row[0]), "orders": int(row[1])}


async def tick_counts(conn: psycopg.AsyncConnection) -> dict[str, int]:
    row = await (await conn.execute(TICK_COUNTS)).fetchone()
    return {"slots": int(row[0]), "runs": int(row[1])}
