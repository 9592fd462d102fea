"""The jobs. Each records that it started, does its work, and records its effect idempotently."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import psycopg
import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_failure

from taskq_celery import dead_letters
from taskq_celery.worker import app, settings
from taskq_common import db
from taskq_common.config import MAX_RETRIES, retry_delay_s


class TransientError(Exception):
    """A failure worth retrying: the next attempt may succeed."""


# Retried with backoff. Anything else is a bug or bad input: retrying cannot fix it, so the job
# goes straight to the dead-letter store.
RETRYABLE = (TransientError, SoftTimeLimitExceeded, psycopg.OperationalError)


@functools.cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_timeout=10)


def run_idempotently(task: Task, key: str, work: Callable[[int], None]) -> None:
    """Record the attempt, do the work, record the effect once per key; retry what is retryable.

    Database errors anywhere in here are retryable too: the effect is written idempotently, so
    an attempt that did its work but could not record it is simply done again.
    """
    try:
        conn = db.connection(settings.postgres_dsn)
        attempt = db.record_attempt(conn, key, task.request.id)
        work(attempt)
        db.record_effect(conn, key, task.request.id)
    except RETRYABLE as exc:
        countdown = retry_delay_s(task.request.retries, settings.retry_base_s)
        # Raises Retry; once the retries are spent, raises exc itself, and the job fails.
        raise task.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES) from exc


@app.task(bind=True, name="demo", default_retry_delay=settings.retry_base_s)
def demo(self: Task, key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    def work(attempt: int) -> None:
        if attempt <= fail_times:
            raise TransientError(f"attempt {attempt} of {key!r} fails on purpose ({fail_times=})")
        time.sleep(sleep_s)

    run_idempotently(self, key, work)


@app.task(bind=True, name="send_report", default_retry_delay=settings.retry_base_s)
def send_report(self: Task, user_id: int, key: str) -> None:
    def work(_: int) -> None:
        time.sleep(0.05)  # stands in for rendering and mailing user_id's report

    run_idempotently(self, key, work)


@app.task(name="tick")
def tick(slot: int) -> None:
    db.record_tick(db.connection(settings.postgres_dsn), slot)


@task_failure.connect
def keep_dead_letter(sender: Task, task_id: str, exception: BaseException, args, kwargs, **_):
    """Every final failure lands here: retries exhausted, non-retryable error, hard time limit
    (sent from the worker's main process), or a pool process lost after its last retry.

    Keyed by job id, so that Celery 5.7 sending this signal twice for a hard time limit (once
    from Request.on_failure, once from on_timeout) still leaves one entry."""
    dead_letters.add(
        redis_client(),
        job_id=task_id,
        task=sender.name,
        args=list(args or []),
        kwargs=dict(kwargs or {}),
        error=f"{type(exception).__name__}: {exception}",
    )
