"""The shop's RQ jobs: receipts, stock syncs and an hourly report, registered with the toolkit's
Jobs (JSON, only registered functions run, retries with backoff, dead letters, a scheduler that
fires each slot once)."""

from __future__ import annotations

import os
import time

import psycopg

from taskq.idempotency import Idempotency
from taskq.idempotency.psycopg import PsycopgStore
from taskq.rq import Jobs
from taskq.schedule import Entry, Every

jobs = Jobs(queues=["default"])
once = Idempotency(PsycopgStore(os.environ["DATABASE_URL"]), lease_s=jobs.settings.lease_s)

REPORT_EVERY_S = int(os.environ.get("SHOP_REPORT_EVERY_S", "3600"))


def log_run(task: str, key: str) -> int:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO runs (task, key) VALUES (%s, %s)", (task, key))
        counted = conn.execute("SELECT count(*) FROM runs WHERE task = %s AND key = %s", (task, key))
        return counted.fetchone()[0]


@jobs.job
def send_receipt(order_id: str, seconds: float = 0.0) -> None:
    """Mails the receipt of an order: once, however often the job runs."""
    log_run("send_receipt", order_id)
    with once.run(f"receipt:{order_id}") as run:
        if run.done:
            return
        time.sleep(seconds)  # rendering and mailing
        with run.transaction() as conn:
            conn.execute("INSERT INTO receipts (order_id) VALUES (%s)", (order_id,))


@jobs.job
def sync_stock(sku: str, fail_times: int = 0) -> None:
    """Calls the warehouse, which times out now and then."""
    if log_run("sync_stock", sku) <= fail_times:
        raise ConnectionError("warehouse timed out")


@jobs.job
def import_feed(url: str) -> None:
    """A feed that cannot be parsed: a bug, not a blip."""
    log_run("import_feed", url)
    raise ValueError(f"cannot parse {url}")


@jobs.job
def hourly_report(slot: int) -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO reports (slot) VALUES (%s)", (slot,))


jobs.add_schedule(Entry("hourly-report", Every(REPORT_EVERY_S), hourly_report, slot_kwarg="slot"))
