"""The demo's effects store in Postgres: attempts, idempotent effects, scheduler ticks.

Every table is written so that a job run twice (a redelivery after a crash) changes nothing the
second time: effects and ticks are keyed, and the insert does nothing on conflict.
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


def migrate(conn: psycopg.Connection) -> None:
    # Serialised with an advisory lock, so that two migrations started together do not race
    # on CREATE TABLE IF NOT EXISTS (which is not safe under concurrency in Postgres).
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(7340427)")
        conn.execute(SCHEMA)


def record_attempt(conn: psycopg.Connection, key: str, job_id: str) -> int:
    """Record that an execution started; return its number for this key, from 1."""
    row = conn.execute(
        "WITH new AS (INSERT INTO attempts (key, job_id) VALUES (%s, %s) RETURNING 1) "
        "SELECT count(*) + 1 FROM attempts WHERE key = %s",
        (key, job_id, key),
    ).fetchone()
    return int(row[0])


def record_effect(conn: psycopg.Connection, key: str, job_id: str) -> bool:
    """Record the job's effect once per key; False when an earlier run already did."""
    cursor = conn.execute(
        "INSERT INTO effects (key, job_id) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
        (key, job_id),
    )
    return cursor.rowcount == 1


def record_tick(conn: psycopg.Connection, slot: int) -> None:
    # Counts every run rather than ignoring repeats, so that a slot fired twice shows up.
    conn.execute(
        "INSERT INTO ticks (slot, runs) VALUES (%s, 1) "
        "ON CONFLICT (slot) DO UPDATE SET runs = ticks.runs + 1, last_run_at = clock_timestamp()",
        (slot,),
    )


def effects_of(conn: psycopg.Connection, key: str) -> dict[str, int | str]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM attempts WHERE key = %s), "
        "(SELECT count(*) FROM effects WHERE key = %s)",
        (key, key),
    ).fetchone()
    return {"key": key, "attempts": int(row[0]), "effects": int(row[1])}


def tick_counts(conn: psycopg.Connection) -> dict[str, int]:
    row = conn.execute("SELECT count(*), coalesce(sum(runs), 0) FROM ticks").fetchone()
    return {"slots": int(row[0]), "runs": int(row[1])}
