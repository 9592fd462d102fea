"""The demo's actors, found by django_dramatiq (demo_dramatiq is an installed app). Retries, the
time limit and dead letters come from the toolkit's broker middleware, not from each actor.

`demo` records its effect with its own idempotent write; `send_report` and `charge` go through
the toolkit's idempotency helper (with the Django store: claims on Django's connection, the
marker in the same `transaction.atomic()` as the ORM writes), which makes their effects happen
once however often they run."""

from __future__ import annotations

import time

import dramatiq
import redis
from demo_common import psp
from demo_common.shop import BrokerUnavailableError
from demo_common.shop.records import place_order, record_attempt, record_digest, record_effect, record_tick
from demo_common.work import fail_if_asked, interruptible_sleep
from dramatiq.middleware import CurrentMessage

from taskq.idempotency import Idempotency
from taskq.idempotency.django import DjangoStore

QUEUE = "default"
idempotency = Idempotency(DjangoStore(), lease_s=dramatiq.get_broker().settings.lease_s)


def message_id() -> str:
    return CurrentMessage.get_current_message().message_id


@dramatiq.actor(queue_name=QUEUE)
def demo(key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    fail_if_asked(record_attempt(key, message_id()), fail_times, key)
    interruptible_sleep(sleep_s)
    record_effect(key, message_id())


@dramatiq.actor(queue_name=QUEUE)
def send_report(user_id: int, key: str) -> None:
    record_attempt(key, message_id())
    with idempotency.run(key, args={"user_id": user_id}) as run:
        if run.done:
            return
        time.sleep(0.05)  # stands in for rendering and mailing user_id's report
        with run.transaction():
            record_effect(key, message_id())


@dramatiq.actor(queue_name=QUEUE)
def charge(key: str, amount_cents: int, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    attempt = record_attempt(key, message_id())
    with idempotency.run(key, args={"amount_cents": amount_cents}) as run:
        if run.done:
            return
        payment = psp.charge(amount_cents, idempotency_key=run.external_key())
        fail_if_asked(attempt, fail_times, key)
        interruptible_sleep(sleep_s)
        with run.transaction():
            place_order(key, payment["id"], amount_cents)
            run.result = {"charge": payment["id"]}


@dramatiq.actor(queue_name=QUEUE)
def tick(slot: int) -> None:
    record_tick(slot)


@dramatiq.actor(queue_name=QUEUE)
def digest() -> None:
    """Stands in for a periodic job of the app's own (a digest mail, a cleanup): once a minute."""
    record_digest()


ACTORS = {"demo": demo, "send_report": send_report, "charge": charge}


def enqueue(task: str, kwargs: dict) -> str:
    """The shop's enqueue (settings.SHOP_ENQUEUE)."""
    try:
        return ACTORS[task].send(**kwargs).message_id
    except redis.RedisError as error:
        raise BrokerUnavailableError(str(error)) from error
