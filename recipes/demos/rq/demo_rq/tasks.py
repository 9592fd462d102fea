"""The demo's jobs, registered with the toolkit's `Jobs`: only registered functions run, every
enqueue carries the retry policy and the timeouts, and the schedule fires each slot once.

`demo` records its effect with its own idempotent write; `send_report` and `charge` go through the
toolkit's idempotency helper, which makes their effects happen once however often they run."""

from __future__ import annotations

import os
import time

import psycopg
from demo_common import db, psp
from demo_common.work import fail_if_asked, interruptible_sleep
from rq import get_current_job

from taskq.idempotency import Idempotency
from taskq.idempotency.psycopg import PsycopgStore
from taskq.rq import Jobs
from taskq.schedule import Entry, Every

jobs = Jobs(queues=["default"])
idempotency = Idempotency(PsycopgStore(jobs.settings.require_database_url()), lease_s=jobs.settings.lease_s)


def connection() -> psycopg.Connection:
    return db.connection(jobs.settings.require_database_url())


@jobs.job
def demo(key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    job_id = get_current_job().id
    attempt = db.record_attempt(connection(), key, job_id)
    fail_if_asked(attempt, fail_times, key)
    interruptible_sleep(sleep_s)
    db.record_effect(connection(), key, job_id)


@jobs.job
def send_report(user_id: int, key: str) -> None:
    job_id = get_current_job().id
    db.record_attempt(connection(), key, job_id)
    with idempotency.run(key, args={"user_id": user_id}) as run:
        if run.done:
            return
        time.sleep(0.05)  # stands in for rendering and mailing user_id's report
        with run.transaction() as conn:
            db.record_effect(conn, key, job_id)


@jobs.job
def charge(key: str, amount_cents: int, sleep_s: float = 0.5, fail_times: int = 0) -> dict:
    attempt = db.record_attempt(connection(), key, get_current_job().id)
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


@jobs.job
def tick(slot: int) -> None:
    db.record_tick(connection(), slot)


@jobs.job
def digest() -> None:
    """Stands in for a periodic job of the app's own (a digest mail, a cleanup): once a minute."""
    db.record_digest(connection())


jobs.add_schedule(
    Entry("tick", Every(int(os.environ.get("TICK_INTERVAL_S", "60"))), tick, slot_kwarg="slot"),
    Entry("digest", "* * * * *", digest),
)
