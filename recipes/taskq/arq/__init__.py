"""The toolkit for an app's Arq worker (Arq 0.26.3+).

    async def charge(ctx, order_id, amount_cents): ...          # positional arguments work

    WorkerSettings = taskq.arq.worker_settings(
        functions=[charge],
        cron_jobs=[taskq.arq.cron(nightly, "0 3 * * *")],
        on_startup=startup, on_shutdown=shutdown,
    )

    python -m taskq.arq worker myapp.worker:WorkerSettings      # runs the functions
    python -m taskq.arq scheduler myapp.worker:WorkerSettings   # enqueues the cron jobs, runs none

    pool = await taskq.arq.create_pool()                          # the producer side (msgpack)
    await pool.enqueue_job("charge", "order-1", 500)

What it sets, and why:
- msgpack, not pickle, for jobs and results, on the worker and in every pool that enqueues: with
  pickle, whoever can write to Redis runs code in the worker before any function is looked up.
- Every function runs under the time limit (JOB_TIME_LIMIT_S, as a retried attempt; Arq's own
  job_timeout a few seconds later is the backstop) and the retry policy: transient errors retry
  3 times with backoff and jitter, anything else fails for good. Arq itself retries only `Retry`.
  `RetryLater` (an idempotency key held by a live run) defers the job without spending a try.
- Jobs that fail for good are kept in the Redis hash `taskq:dead-letters` (Arq forgets them after
  keep_result), and can be requeued with `taskq dlq requeue`.
- SIGTERM waits for running jobs (Arq's default cancels them at once); a health key per process,
  every 5 s, mirrored into a heartbeat file; polling every 50 ms, 32 jobs at once, 200 ids a poll
  (Arq's defaults cap a worker near 200 jobs a second); a Redis outage is ridden out, not fatal.
- Cron jobs run in a scheduler process of their own (`unique`, results kept an hour): two
  schedulers enqueue each run once, and scaling the workers never adds schedulers. `due_time(ctx)`
  is the slot a run is for, the same however late it was enqueued or how often it was retried.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import arq
import msgpack
from arq import Retry
from arq.connections import ArqRedis, RedisSettings
from arq.constants import retry_key_prefix
from arq.cron import CronJob
from arq.cron import cron as arq_cron
from arq.worker import Function
from arq.worker import func as arq_func

from taskq.context import running
from taskq.errors import ConfigError
from taskq.heartbeat import DEFAULT_SCHEDULER_FILE, DEFAULT_WORKER_FILE
from taskq.idempotency import identity_of
from taskq.retry import RetryLater
from taskq.schedule import Cron, Every, parse_schedule
from taskq.settings import (
    ARQ_HEALTH_CHECK_INTERVAL_S,
    ARQ_KEEP_RESULT_S,
    ARQ_MAX_JOBS,
    ARQ_POLL_DELAY_S,
    ARQ_QUEUE_READ_LIMIT,
    ArqSettings,
)

__all__ = ["create_pool", "cron", "deserialize", "due_time", "redis_settings", "serialize", "worker_settings"]

MINIMUM_VERSION = (0, 26, 3)
HEALTH_CHECK_KEY_PREFIX = "arq:health-check:"
# A sorted set per queue of the jobs running now (job id -> start, epoch ms), kept by the worker:
# Arq marks a running job only with a key of its own, which only a SCAN of the keyspace finds.
RUNNING_KEY_PREFIX = "taskq:arq:running:"


def running_key(queue_name: str) -> str:
    return RUNNING_KEY_PREFIX + queue_name


def display_name(queue_name: str) -> str:
    """Arq's default queue, `arq:queue`, shows as "default", like the other libraries' default."""
    return "default" if queue_name == "arq:queue" else queue_name


class TimeLimitExceededError(Exception):
    """The job ran past JOB_TIME_LIMIT_S and was cancelled."""


# --- serialization -------------------------------------------------------------------------------
def _encode(value: Any) -> Any:
    # A failed job's result is its exception: stored as text, with the idempotency key it was for.
    if isinstance(value, BaseException):
        encoded = {"error": f"{type(value).__name__}: {value}"}
        if (identity := identity_of(value)) is not None:
            encoded["taskq_idempotency"] = list(identity)
        return encoded
    raise TypeError(f"cannot serialize {type(value).__name__}")


def serialize(value: Any) -> bytes:
    return msgpack.packb(value, default=_encode)


def deserialize(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False)


def redis_settings(url: str | None = None, settings: ArqSettings | None = None) -> RedisSettings:
    """Arq's RedisSettings from a redis:// URL (REDIS_URL by default), built from the URL's parts:
    RedisSettings.from_dsn keeps a password percent-encoded."""
    parts = urlsplit(url or (settings or ArqSettings.from_env()).require_redis_url())
    return RedisSettings(
        host=parts.hostname or "localhost",
        port=parts.port or 6379,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        database=int(parts.path.strip("/") or 0),
        ssl=parts.scheme == "rediss",
        conn_timeout=5,
    )


async def create_pool(
    url: str | None = None, *, queue_name: str = arq.constants.default_queue_name
) -> ArqRedis:
    """An Arq pool that enqueues with msgpack, for the producer side (web app, scripts)."""
    return await arq.create_pool(
        redis_settings(url),
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=queue_name,
    )


# --- jobs ------------------------------------------------------------------------------------------
def _check_version() -> None:
    found = tuple(int(p) for p in arq.VERSION.split(".")[:3] if p.isdigit())
    if found < MINIMUM_VERSION:
        raise ConfigError(
            f"taskq.arq needs Arq {'.'.join(map(str, MINIMUM_VERSION))} or later, found {arq.VERSION}: "
            "earlier versions start deferred retries early and wait out job_completion_wait in full"
        )


def attempt(
    job: Callable[..., Awaitable[Any]], settings: ArqSettings, name: str
) -> Callable[..., Awaitable[Any]]:
    """Run the job under the time limit and the retry policy, as Arq's Retry."""
    policy = settings.retry

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            with running(name):
                try:
                    async with asyncio.timeout(settings.job_time_limit_s):
                        return await job(ctx, *args, **kwargs)
                except TimeoutError:
                    raise TimeLimitExceededError(
                        f"time limit of {settings.job_time_limit_s} s exceeded"
                    ) from None
        except RetryLater as later:
            # Give the try back: Arq counted it when the job started.
            await ctx["redis"].decr(retry_key_prefix + ctx["job_id"])
            raise Retry(defer=policy.defer_s(later.retry_after_s)) from later
        except Exception as error:
            if isinstance(error, Retry) or not (
                isinstance(error, TimeLimitExceededError) or policy.is_transient(error)
            ):
                raise
            if ctx["job_try"] > policy.max_retries:
                raise
            raise Retry(defer=policy.delay_s(ctx["job_try"] - 1)) from error

    return run


def _function(f: Callable | Function, settings: ArqSettings, name: str | None = None) -> Function:
    if isinstance(f, Function):
        wrapped = attempt(f.coroutine, settings, f.name)
        return Function(
            name=f.name,
            coroutine=wrapped,
            timeout_s=f.timeout_s,
            keep_result_s=f.keep_result_s,
            keep_result_forever=f.keep_result_forever,
            max_tries=f.max_tries,
        )
    name = name or f.__qualname__
    return arq_func(attempt(f, settings, name), name=name, max_tries=settings.retry.max_retries + 1)


def cron_fields(schedule: Every | Cron) -> dict[str, Any]:
    """Arq's cron fields for a schedule. An interval must divide a minute, an hour or a day into
    equal parts (so that it is a cron schedule); a cron expression may not restrict both day fields
    (cron runs a day that matches either; Arq needs both)."""
    if isinstance(schedule, Every):
        interval = int(schedule.seconds)
        if interval != schedule.seconds:
            raise ConfigError(f"an Arq interval must be whole seconds, got {schedule.seconds}")
        if 60 % interval == 0:
            return {"second": set(range(0, 60, interval))}
        if interval % 60 == 0 and 3600 % interval == 0:
            return {"second": {0}, "minute": set(range(0, 60, interval // 60))}
        if interval % 3600 == 0 and 86400 % interval == 0:
            return {"second": {0}, "minute": {0}, "hour": set(range(0, 24, interval // 3600))}
        raise ConfigError(
            f"an interval of {interval} s is not a cron schedule: use a divisor of 60 s, or whole minutes "
            "dividing an hour, or whole hours dividing a day"
        )
    if schedule.tz is not UTC:
        raise ConfigError(f"cron {schedule.expr!r}: Arq's cron runs in UTC here; give the times in UTC")
    if not schedule._any_day and not schedule._any_weekday:
        raise ConfigError(
            f"cron {schedule.expr!r}: restrict either the day of month or the weekday, not both"
        )
    return {
        "second": {0},
        "minute": set(schedule.minutes),
        "hour": None if len(schedule.hours) == 24 else set(schedule.hours),
        "day": None if schedule._any_day else set(schedule.days),
        "month": None if len(schedule.months) == 12 else set(schedule.months),
        # Arq counts weekdays from Monday = 0, cron from Sunday = 0.
        "weekday": None if schedule._any_weekday else {(d - 1) % 7 for d in schedule.weekdays},
    }


def cron(coroutine: Callable, schedule: Every | Cron | str | float, *, name: str | None = None) -> CronJob:
    """A cron job from a cron expression or an interval; unique (two schedulers enqueue each run
    once) and its result kept an hour (so that a late scheduler cannot enqueue the run again)."""
    fields = {k: v for k, v in cron_fields(parse_schedule(schedule)).items() if v is not None}
    return arq_cron(
        coroutine,
        name=name or f"cron:{coroutine.__qualname__}",
        unique=True,
        keep_result=ARQ_KEEP_RESULT_S,
        run_at_startup=False,
        **fields,
    )


def due_time(ctx: dict[str, Any]) -> datetime:
    """The time a cron run was due, from its job id (`<cron name>:<due time in ms>`, what
    `unique=True` makes). Not `ctx["score"]`: Arq moves a job's score on every retry, and a
    scheduler that enqueues a run late gives it the time it enqueued it."""
    name, _, millis = str(ctx.get("job_id", "")).rpartition(":")
    if not name or not millis.isdigit():
        raise ValueError(
            f"job {ctx.get('job_id')!r} has no due time: due_time(ctx) is for cron jobs made with "
            "taskq.arq.cron (unique job ids)"
        )
    return datetime.fromtimestamp(int(millis) / 1000, tz=UTC)


def worker_settings(
    functions: Sequence[Callable | Function] = (),
    *,
    cron_jobs: Sequence[CronJob] = (),
    on_startup: Callable | None = None,
    on_shutdown: Callable | None = None,
    queue_name: str = arq.constants.default_queue_name,
    redis_url: str | None = None,
    settings: ArqSettings | None = None,
    worker_heartbeat_file: str | Path = DEFAULT_WORKER_FILE,
    scheduler_heartbeat_file: str | Path = DEFAULT_SCHEDULER_FILE,
    **overrides: Any,
) -> type:
    """A WorkerSettings class for `python -m taskq.arq worker|scheduler`. Settings and the Redis
    URL are read when a worker starts, not here."""
    _check_version()
    for f in functions:
        if not callable(f) and not isinstance(f, Function):
            raise ConfigError(f"worker_settings(functions=...) takes coroutine functions, got {f!r}")

    def toolkit() -> ArqToolkit:
        return ArqToolkit(
            functions=list(functions),
            cron_jobs=list(cron_jobs),
            on_startup=on_startup,
            on_shutdown=on_shutdown,
            queue_name=queue_name,
            redis_url=redis_url,
            settings=settings,
            worker_heartbeat_file=Path(worker_heartbeat_file),
            scheduler_heartbeat_file=Path(scheduler_heartbeat_file),
            overrides=overrides,
        )

    return type(
        "WorkerSettings",
        (),
        {
            "queue_name": queue_name,
            "functions": list(functions),
            "cron_jobs": list(cron_jobs),
            "on_startup": on_startup,
            "on_shutdown": on_shutdown,
            "job_serializer": staticmethod(serialize),
            "job_deserializer": staticmethod(deserialize),
            "taskq": staticmethod(toolkit),
            "__taskq_operations__": staticmethod(lambda: toolkit().operations()),
        },
    )


class ArqToolkit:
    def __init__(
        self,
        *,
        functions: list,
        cron_jobs: list[CronJob],
        on_startup: Callable | None,
        on_shutdown: Callable | None,
        queue_name: str,
        redis_url: str | None,
        settings: ArqSettings | None,
        worker_heartbeat_file: Path,
        scheduler_heartbeat_file: Path,
        overrides: dict[str, Any],
    ) -> None:
        self.functions, self.cron_jobs = functions, cron_jobs
        self.on_startup, self.on_shutdown = on_startup, on_shutdown
        self.queue_name, self.redis_url = queue_name, redis_url
        self.settings = settings or ArqSettings.from_env()
        self.worker_heartbeat_file, self.scheduler_heartbeat_file = (
            worker_heartbeat_file,
            scheduler_heartbeat_file,
        )
        self.overrides = overrides

    @functools.cached_property
    def redis_url_resolved(self) -> str:
        return self.redis_url or self.settings.require_redis_url()

    def options(self, **extra: Any) -> dict[str, Any]:
        """Arq Worker options shared by the worker and the scheduler."""
        s = self.settings
        return {
            "queue_name": self.queue_name,
            "redis_settings": redis_settings(self.redis_url_resolved),
            "job_serializer": serialize,
            "job_deserializer": deserialize,
            "max_tries": s.retry.max_retries + 1,
            # The toolkit's own time limit ends a job first; this is the backstop, and sets the
            # in-progress key's lifetime (+10 s) after which a killed worker's job runs again.
            "job_timeout": s.arq_job_timeout_s,
            # A graceful stop takes no new job and waits this long for the running ones.
            "job_completion_wait": s.job_completion_wait_s,
            "max_jobs": ARQ_MAX_JOBS,
            "poll_delay": ARQ_POLL_DELAY_S,
            "queue_read_limit": ARQ_QUEUE_READ_LIMIT,
            "health_check_key": f"{HEALTH_CHECK_KEY_PREFIX}{socket.gethostname()}",
            "health_check_interval": ARQ_HEALTH_CHECK_INTERVAL_S,
            "keep_result": ARQ_KEEP_RESULT_S,
            "timezone": UTC,
            **self.overrides,
            **extra,
        }

    def worker(self) -> Any:
        """The worker: every function, and the cron jobs' functions (under the cron names), but no
        cron scheduling (that is the scheduler's)."""
        from taskq.arq.worker import ToolkitWorker

        self.settings.check()
        functions = [_function(f, self.settings) for f in self.functions]
        functions += [_function(job.coroutine, self.settings, job.name) for job in self.cron_jobs]
        return ToolkitWorker(
            heartbeat_file=self.worker_heartbeat_file,
            functions=functions,
            on_startup=self.on_startup,
            on_shutdown=self.on_shutdown,
            **self.options(),
        )

    def scheduler(self) -> Any:
        """A process that enqueues the cron jobs and runs nothing itself (max_jobs=0)."""
        from taskq.arq.worker import ToolkitWorker

        if not self.cron_jobs:
            raise ConfigError("worker_settings(cron_jobs=...) is empty: there is nothing to schedule")
        return ToolkitWorker(
            heartbeat_file=self.scheduler_heartbeat_file, cron_jobs=self.cron_jobs, **self.options(max_jobs=0)
        )

    def operations(self):
        from taskq.arq.ops import operations

        return operations(self)
