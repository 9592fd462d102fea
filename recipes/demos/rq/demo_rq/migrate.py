"""`python -m demo_rq.migrate`: the demo's tables and the toolkit's idempotency table, in one
transaction (what an Alembic revision would hold: the models' tables, and
`op.execute(taskq.idempotency.schema_sql())`)."""

from __future__ import annotations

from sqlalchemy import text

from demo_rq.db import Base, engine
from taskq.idempotency import schema_sql


def main() -> None:
    with engine.begin() as conn:
        # Two migrations started together must not race on CREATE TABLE IF NOT EXISTS.
        conn.execute(text("SELECT pg_advisory_xact_lock(7340427)"))
        Base.metadata.create_all(conn)
        conn.execute(text(schema_sql()))
    print("schema up to date")


if __name__ == "__main__":
    main()
