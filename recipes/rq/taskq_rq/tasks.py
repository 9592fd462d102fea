"""The jobs, and how they are enqueued. Each records that it started, does its work, and
records its effect idempotently. RQ retries a failed job (any exception, the job timeout
included) through the Retry every job is enqueued with."""

from __future__ import annotations

import time
from collections.abc import Callable

from rq import Retry, get_current_job
from rq.job import Job

from taskq_common import db
from taskq_rq.settings import FAILURE_TTL_S, MAX_RETRIES, retry_delay_s
from taskq_rq.worker import default_queue, settings


class TransientError(Exception):
    """A failure worth retrying: the next attempt may succeed."""


def retry_policy() -> Retry:
    # RQ has no backoff of its own: the intervals are drawn here, once per enqueue.
    return Retry(
        max=MAX_RETRIES, interval=[retry_delay_s(n, settings.retry_base_s) for n in range(MAX_RETRIES)]
    )


def enqueue(func: Callable, **kwargs) -> Job:
    return default_queue().enqueue(
        func,
        kwargs=kwargs,
        retry=retry_policy(),
        job_timeout=settings.job_time_limit_s,
        failure_ttl=FAILURE_TTL_S,
        result_ttl=3600,
    )


def run_idempotently(key: str, work: Callable[[int], None]) -> None:
    """Record the attempt, do the work, record the effect once per key."""
    job_id = get_current_job().id
    conn = db.connection(settings.postgres_dsn)
    attempt = db.record_attempt(conn, key, job_id)
    work(attempt)
    db.record_effect(conn, key, job_id)


def demo(key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    def work(attempt: int) -> None:
        if attempt <= fail_times:
            raise TransientError(f"attempt {attempt} of {key!r} fails on purpose ({fail_times=})")
        time.sleep(sleep_s)

    run_idempotently(key, work)


def send_report(user_id: int, key: str) -> None:
    def work(_: int) -> None:
        time.sleep(0.05)  # stands in for rendering and mailing user_id's report

    run_idempotently(key, work)


def tick(slot: int) -> None:
    db.record_tick(db.connection(settings.postgres_dsn), slot)
