"""The jobs. Each records that it started, does its work, and records its effect idempotently."""

from __future__ import annotations

import functools
import time

import psycopg
import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_failure

from taskq_celery import db, dead_letters
from taskq_celery.settings import MAX_RETRIES, retry_delay_s
from taskq_celery.worker import app, settings


class TransientError(Exception):
    """A failure worth retrying: the next attempt may succeed."""


# Retried with backoff. Anything else is a bug or bad input: retrying cannot fix it, so the job
# goes straight to the dead-letter store.
RETRYABLE = (TransientError, SoftTimeLimitExceeded, psycopg.OperationalError)


@functools.cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.broker_url, socket_timeout=10)


def retry_later(task: Task, exc: Exception) -> Exception:
    """The Retry to raise for a retryable failure; the original error once retries run out."""
    countdown = retry_delay_s(task.request.retries, settings.retry_base_s)
    return task.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES)


@app.task(bind=True, name="demo", default_retry_delay=settings.retry_base_s)
def demo(self: Task, key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    conn = db.connection(settings.postgres_dsn)
    try:
        attempt = db.record_attempt(conn, key, self.request.id)
        if attempt <= fail_times:
            raise TransientError(f"attempt {attempt} of {key!r} fails on purpose ({fail_times=})")
        time.sleep(sleep_s)
    except RETRYABLE as exc:
        raise retry_later(self, exc) from exc
    db.record_effect(conn, key, self.request.id)


@app.task(bind=True, name="send_report", default_retry_delay=settings.retry_base_s)
def send_report(self: Task, user_id: int, key: str) -> None:
    conn = db.connection(settings.postgres_dsn)
    try:
        db.record_attempt(conn, key, self.request.id)
        time.sleep(0.05)  # stands in for rendering and mailing the report
    except RETRYABLE as exc:
        raise retry_later(self, exc) from exc
    db.record_effect(conn, key, self.request.id)


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
