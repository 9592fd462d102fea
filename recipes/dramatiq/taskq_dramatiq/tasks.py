"""The actors. Each records that it started, does its work, and records its effect idempotently.

Time limit and retries are set once, on the broker's middleware (broker.py), not per actor:
Dramatiq's defaults (10 minutes, 20 retries over about a week) would apply to any actor that
forgot them. Any exception is retried, the time limit included, and a message that fails its
last attempt is dead-lettered to `default.XQ`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dramatiq
from dramatiq.middleware import CurrentMessage

from taskq_common import db
from taskq_dramatiq.broker import QUEUE, settings


class TransientError(Exception):
    """A failure worth retrying: the next attempt may succeed."""


def interruptible_sleep(seconds: float) -> None:
    """Sleep in short steps. Dramatiq's time limit raises an exception in the actor's thread,
    which Python delivers only between bytecodes: it cannot stop one long C call (a single
    time.sleep, a blocking socket read without a timeout, a long computation in a C extension).
    Real work should use timeouts on its I/O for the same reason."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))


def run_idempotently(key: str, work: Callable[[int], None]) -> None:
    """Record the attempt, do the work, record the effect once per key."""
    message_id = CurrentMessage.get_current_message().message_id
    conn = db.connection(settings.postgres_dsn)
    attempt = db.record_attempt(conn, key, message_id)
    work(attempt)
    db.record_effect(conn, key, message_id)


@dramatiq.actor(queue_name=QUEUE)
def demo(key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    def work(attempt: int) -> None:
        if attempt <= fail_times:
            raise TransientError(f"attempt {attempt} of {key!r} fails on purpose ({fail_times=})")
        interruptible_sleep(sleep_s)

    run_idempotently(key, work)


@dramatiq.actor(queue_name=QUEUE)
def send_report(user_id: int, key: str) -> None:
    def work(_: int) -> None:
        time.sleep(0.05)  # stands in for rendering and mailing user_id's report

    run_idempotently(key, work)


@dramatiq.actor(queue_name=QUEUE)
def tick(slot: int) -> None:
    db.record_tick(db.connection(settings.postgres_dsn), slot)
