"""The demo's Celery tasks, discovered by `app.autodiscover_tasks()` (demo_celery is an installed app).

`demo` records its effect with its own idempotent write; `send_report` and `charge` go through
the toolkit's idempotency helper (with the Django store: claims on Django's connection, the
marker in the same `transaction.atomic()` as the ORM writes), which makes their effects happen
once however often they run (a redelivery, a second enqueue, two deliveries at once)."""

from __future__ import annotations

import time

from celery import Task, shared_task
from demo_common import psp
from demo_common.shop import BrokerUnavailableError
from demo_common.shop.records import place_order, record_attempt, record_digest, record_effect, record_tick
from demo_common.work import fail_if_asked, interruptible_sleep
from kombu.exceptions import OperationalError

from demo_celery.celery import toolkit
from taskq.idempotency.django import DjangoStore

idempotency = toolkit.idempotency(DjangoStore())


@shared_task(bind=True, name="demo", taskq_retry=True)
def demo(self: Task, key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    fail_if_asked(record_attempt(key, self.request.id), fail_times, key)
    interruptible_sleep(sleep_s)
    record_effect(key, self.request.id)


@shared_task(bind=True, name="send_report", taskq_retry=True)
def send_report(self: Task, user_id: int, key: str) -> None:
    record_attempt(key, self.request.id)
    with idempotency.run(key, args={"user_id": user_id}) as run:
        if run.done:
            return
        time.sleep(0.05)  # stands in for rendering and mailing user_id's report
        with run.transaction():
            record_effect(key, self.request.id)


@shared_task(bind=True, name="charge", taskq_retry=True)
def charge(self: Task, key: str, amount_cents: int, sleep_s: float = 0.5, fail_times: int = 0) -> dict:
    attempt = record_attempt(key, self.request.id)
    with idempotency.run(key, args={"amount_cents": amount_cents}) as run:
        if run.done:
            return run.result
        payment = psp.charge(amount_cents, idempotency_key=run.external_key())
        fail_if_asked(attempt, fail_times, key)
        interruptible_sleep(sleep_s)
        with run.transaction():
            place_order(key, payment["id"], amount_cents)
            run.result = {"charge": payment["id"]}
        return run.result


@shared_task(name="tick")
def tick(slot: int) -> None:
    record_tick(slot)


@shared_task(name="digest")
def digest() -> None:
    """Stands in for a periodic job of the app's own (a digest mail, a cleanup): once a minute."""
    record_digest()


TASKS = {"demo": demo, "send_report": send_report, "charge": charge}


def enqueue(task: str, kwargs: dict) -> str:
    """The shop's enqueue (settings.SHOP_ENQUEUE): a short publish retry, so that a request waits
    about a second for a broker that is away, not more."""
    try:
        return TASKS[task].apply_async(kwargs=kwargs, retry_policy={"max_retries": 2, "interval_max": 0.5}).id
    except OperationalError as error:
        raise BrokerUnavailableError(str(error)) from error
