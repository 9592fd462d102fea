"""`python -m shop.migrate`: the shop's tables, and the toolkit's idempotency table."""

from __future__ import annotations

import os

import psycopg

from taskq.idempotency import schema_sql
from taskq.idempotency.psycopg import migrate

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (task text NOT NULL, key text NOT NULL, at timestamptz DEFAULT now());
CREATE TABLE IF NOT EXISTS receipts (order_id text NOT NULL);
CREATE TABLE IF NOT EXISTS reports (slot bigint NOT NULL);
"""

if __name__ == "__main__":
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        migrate(conn, SCHEMA, schema_sql())
