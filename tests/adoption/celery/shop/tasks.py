"""The shop's tasks: receipts, stock syncs and an hourly report."""

from __future__ import annotations

import os
import time

import psycopg

from shop.celery_app import app, toolkit
from taskq.idempotency.psycopg import PsycopgStore

once = toolkit.idempotency(PsycopgStore(os.environ["DATABASE_URL"]))


def log_run(task: str, key: str) -> int:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO runs (task, key) VALUES (%s, %s)", (task, key))
        counted = conn.execute("SELECT count(*) FROM runs WHERE task = %s AND key = %s", (task, key))
        return counted.fetchone()[0]


@app.task
def send_receipt(order_id: str, seconds: float = 0.0) -> None:
    """Mails the receipt of an order: once, however often the task runs."""
    log_run("send_receipt", order_id)
    with once.run(f"receipt:{order_id}") as run:
        if run.done:
            return
        time.sleep(seconds)  # rendering and mailing
        with run.transaction() as conn:
            conn.execute("INSERT INTO receipts (order_id) VALUES (%s)", (order_id,))


@app.task(taskq_retry=True)
def sync_stock(sku: str, fail_times: int = 0) -> None:
    """Calls the warehouse, which times out now and then: retried with the toolkit's policy."""
    if log_run("sync_stock", sku) <= fail_times:
        raise ConnectionError("warehouse timed out")


@app.task
def import_feed(url: str) -> None:
    """A feed that cannot be parsed: a bug, not a blip."""
    log_run("import_feed", url)
    raise ValueError(f"cannot parse {url}")


@app.task
def hourly_report(slot: int) -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO reports (slot) VALUES (%s)", (slot,))
