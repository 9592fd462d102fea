"""The demo's actors. Retries, the time limit and dead letters come from the broker's middleware
(the toolkit's policy), not from each actor.

`demo` records its effect with its own idempotent write; `send_report` and `charge` go through the
toolkit's idempotency helper, which makes their effects happen once however often they run."""

from __future__ import annotations

import os
import time

import dramatiq
import psycopg
from demo_common import db, psp
from demo_common.work import fail_if_asked, interruptible_sleep
from dramatiq.middleware import CurrentMessage

from demo_dramatiq.broker import broker
from taskq.idempotency import Idempotency
from taskq.idempotency.psycopg import PsycopgStore
from taskq.schedule import Entry, Every

QUEUE = "default"
idempotency = Idempotency(
    PsycopgStore(broker.settings.require_database_url()), lease_s=broker.settings.lease_s
)


def connection() -> psycopg.Connection:
    return db.connection(broker.settings.require_database_url())


def message_id() -> str:
    return CurrentMessage.get_current_message().message_id


@dramatiq.actor(queue_name=QUEUE)
def demo(key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    attempt = db.record_attempt(connection(), key, message_id())
    fail_if_asked(attempt, fail_times, key)
    interruptible_sleep(sleep_s)
    db.record_effect(connection(), key, message_id())


@dramatiq.actor(queue_name=QUEUE)
def send_report(user_id: int, key: str) -> None:
    db.record_attempt(connection(), key, message_id())
    with idempotency.run(key, args={"user_id": user_id}) as run:
        if run.done:
            return
        time.sleep(0.05)  # stands in for rendering and mailing user_id's report
        with run.transaction() as conn:
            db.record_effect(conn, key, message_id())


@dramatiq.actor(queue_name=QUEUE)
def charge(key: str, amount_cents: int, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    attempt = db.record_attempt(connection(), key, message_id())
    with idempotency.run(key, args={"amount_cents": amount_cents}) as run:
        if run.done:
            return
        payment = psp.charge(amount_cents, idempotency_key=run.external_key())
        fail_if_asked(attempt, fail_times, key)
        interruptible_sleep(sleep_s)
        with run.transaction() as conn:
            db.insert_order(conn, key, payment["id"], amount_cents)
            run.result = {"charge": payment["id"]}


@dramatiq.actor(queue_name=QUEUE)
def tick(slot: int) -> None:
    db.record_tick(connection(), slot)


@dramatiq.actor(queue_name=QUEUE)
def digest() -> None:
    """Stands in for a periodic job of the app's own (a digest mail, a cleanup): once a minute."""
    db.record_digest(connection())


# Sent by `python -m taskq.dramatiq scheduler demo_dramatiq.tasks:schedule`, each slot once.
schedule = [
    Entry("tick", Every(int(os.environ.get("TICK_INTERVAL_S", "60"))), tick, slot_kwarg="slot"),
    Entry("digest", "* * * * *", digest),
]
