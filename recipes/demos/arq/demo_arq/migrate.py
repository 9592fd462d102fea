"""`python -m demo_arq.migrate`: the demo's tables and the toolkit's idempotency table, in one
migration (idempotent, serialised by an advisory lock). What an app with plain SQL migrations
does: its own schema, plus `taskq.idempotency.schema_sql()`."""

from __future__ import annotations

import psycopg

from demo_arq.db import SCHEMA
from taskq.idempotency import schema_sql
from taskq.idempotency.psycopg import migrate
from taskq.settings import Settings


def main() -> None:
    with psycopg.connect(Settings.from_env().require_database_url(), connect_timeout=10) as conn:
        migrate(conn, SCHEMA, schema_sql())
    print("schema up to date")


if __name__ == "__main__":
    main()
