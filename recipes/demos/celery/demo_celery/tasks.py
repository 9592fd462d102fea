"""The demo's jobs. `demo` records its effect with its own idempotent write; `send_report` and
`charge` go through the toolkit's idempotency helper, which makes their effects happen once
however often they run (a redelivery, a second enqueue, two deliveries at once)."""

from __future__ import annotations

import time

import psycopg
from celery import Task
from demo_common import db, psp
from demo_common.work import fail_if_asked, interruptible_sleep

from demo_celery.app import app, settings, toolkit
from taskq.idempotency.psycopg import PsycopgStore

idempotency = toolkit.idempotency(PsycopgStore(settings.require_database_url()))


def connection() -> psycopg.Connection:
    return db.connection(settings.require_database_url())


@app.task(bind=True, name="demo", taskq_retry=True)
def demo(self: Task, key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    attempt = db.record_attempt(connection(), key, self.request.id)
    fail_if_asked(attempt, fail_times, key)
    interruptible_sleep(sleep_s)
    db.record_effect(connection(), key, self.request.id)


@app.task(bind=True, name="send_report", taskq_retry=True)
def send_report(self: Task, user_id: int, key: str) -> None:
    db.record_attempt(connection(), key, self.request.id)
    with idempotency.run(key, args={"user_id": user_id}) as run:
        if run.done:
            return
        time.sleep(0.05)  # stands in for rendering and mailing user_id's report
        with run.transaction() as conn:
            db.record_effect(conn, key, self.request.id)


@app.task(bind=True, name="charge", taskq_retry=True)
def charge(self: Task, key: str, amount_cents: int, sleep_s: float = 0.5, fail_times: int = 0) -> dict:
    attempt = db.record_attempt(connection(), key, self.request.id)
    with idempotency.run(key, args={"amount_cents": amount_cents}) as run:
        if run.done:
            return run.result
        payment = psp.charge(amount_cents, idempotency_key=run.external_key())
        fail_if_asked(attempt, fail_times, key)
        interruptible_sleep(sleep_s)
        with run.transaction() as conn:
            db.insert_order(conn, key, payment["id"], amount_cents)
            run.result = {"charge": payment["id"]}
        return run.result


@app.task(name="tick")
def tick(slot: int) -> None:
    db.record_tick(connection(), slot)


@app.task(name="digest")
def digest() -> None:
    """Stands in for a periodic job of the app's own (a digest mail, a cleanup): once a minute."""
    db.record_digest(connection())
