"""The jobs. Each records that it started, does its work, and records its effect idempotently.

Arq retries only a job that raises `Retry`; any other exception, its own timeout included, fails
the job for good. `attempt` gives every job the contract's semantics instead: a transient error
or the time limit ends the attempt, and the job is retried with exponential backoff and jitter
until its fourth try, which fails it (and dead-letters it: see worker.py).
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from arq import Retry

from taskq_arq.queue import settings
from taskq_arq.settings import MAX_TRIES, retry_delay_s
from taskq_common import db


class TransientError(Exception):
    """A failure worth retrying: the next attempt may succeed."""


class TimeLimitExceededError(Exception):
    """The job ran past JOB_TIME_LIMIT_S and was cancelled."""


# Worth another try: the recipe's own, a lost database connection, a network error.
TRANSIENT_ERRORS = (TransientError, TimeLimitExceededError, psycopg.OperationalError, ConnectionError)

Job = Callable[..., Awaitable[Any]]


def attempt(job: Job) -> Job:
    """Run the job under the time limit; turn a transient failure into Arq's Retry."""

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], **kwargs: Any) -> Any:
        try:
            try:
                async with asyncio.timeout(settings.job_time_limit_s):
                    return await job(ctx, **kwargs)
            except TimeoutError:
                raise TimeLimitExceededError(
                    f"time limit of {settings.job_time_limit_s} s exceeded"
                ) from None
        except TRANSIENT_ERRORS as error:
            if ctx["job_try"] >= MAX_TRIES:
                raise
            raise Retry(defer=retry_delay_s(ctx["job_try"] - 1, settings.retry_base_s)) from error

    return run


async def run_idempotently(ctx: dict[str, Any], key: str, work: Callable[[int], Awaitable[None]]) -> None:
    """Record the attempt, do the work, record the effect once per key (no connection is held
    while the work runs)."""
    async with ctx["db"].connection() as conn:
        number = await db.record_attempt_async(conn, key, ctx["job_id"])
    await work(number)
    async with ctx["db"].connection() as conn:
        await db.record_effect_async(conn, key, ctx["job_id"])


@attempt
async def demo(ctx: dict[str, Any], *, key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    async def work(number: int) -> None:
        if number <= fail_times:
            raise TransientError(f"attempt {number} of {key!r} fails on purpose ({fail_times=})")
        await asyncio.sleep(sleep_s)

    await run_idempotently(ctx, key, work)


@attempt
async def send_report(ctx: dict[str, Any], *, user_id: int, key: str) -> None:
    async def work(_: int) -> None:
        await asyncio.sleep(0.05)  # stands in for rendering and mailing user_id's report

    await run_idempotently(ctx, key, work)


@attempt
async def tick(ctx: dict[str, Any]) -> None:
    # A cron job's score is the time it was due: its slot, however late it runs.
    slot = math.floor(ctx["score"] / 1000 / settings.tick_interval_s)
    async with ctx["db"].connection() as conn:
        await db.record_tick_async(conn, slot)
