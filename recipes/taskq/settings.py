"""The settings the toolkit reads, and every timeout derived from them, for each library.

Standard library only: importing this module imports no job library, reads nothing and starts
nothing. `Settings.from_env()` reads the environment when an adapter asks for it (at worker
start, or when an app calls a toolkit function), never at import, and a missing or malformed
value is a `ConfigError` that names the variable and the fix.

The numbers that couple each other (time limit, hard limit, visibility timeout, lease, grace
period, shutdown timeout) all come from JOB_TIME_LIMIT_S through the properties below, and
`check()` refuses a stop grace period in which a graceful stop could cut a job short.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar, Self
from urllib.parse import quote

from taskq.dsn import normalize_postgres_url
from taskq.errors import ConfigError
from taskq.retry import RetryPolicy

__all__ = [
    "ArqSettings",
    "CelerySettings",
    "ConfigError",
    "DramatiqSettings",
    "RQSettings",
    "Settings",
]

# An idempotency lease outlasts the library's hard time limit by this much, so that a run that
# is still allowed to run always still holds its lease (the margin covers the gap between the
# claim and the start of the library's clock).
LEASE_MARGIN_S = 5


def int_setting(env: Mapping[str, str], name: str, default: int | None = None, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ConfigError(f"{name} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def float_setting(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0 or math.isinf(value):
        raise ConfigError(f"{name} must be above 0, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """What every adapter reads. Build it with `from_env()` or directly (tests, apps that keep
    their configuration elsewhere); the library subclasses add what their library derives.

    redis_url and database_url may be None: only the pieces that talk to Redis or Postgres need
    them, and they ask with `require_redis_url()` / `require_database_url()`.
    """

    redis_url: str | None = None
    database_url: str | None = None
    job_time_limit_s: int = 300
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # None: the library's minimum plus a margin (see `default_stop_grace_period_s`).
    stop_grace_period_s: int | None = None

    library: ClassVar[str] = "the job library"
    # What the worker's graceful stop waits for, for the error message.
    shutdown_waits_for: ClassVar[str] = "the running job"
    # The grace period a stack gets when it sets none: the minimum plus this much.
    grace_margin_s: ClassVar[int] = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """REDIS_URL (or REDIS_HOST, REDIS_PORT, REDIS_PASSWORD), DATABASE_URL (or POSTGRES_HOST,
        POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB), JOB_TIME_LIMIT_S (300),
        RETRY_BASE_S (1), STOP_GRACE_PERIOD_S (derived from the time limit)."""
        env = os.environ if env is None else env
        database_url = env.get("DATABASE_URL") or compose_postgres_url(env)
        grace = env.get("STOP_GRACE_PERIOD_S")
        return cls(
            redis_url=env.get("REDIS_URL") or compose_redis_url(env),
            database_url=normalize_postgres_url(database_url, "DATABASE_URL") if database_url else None,
            job_time_limit_s=int_setting(env, "JOB_TIME_LIMIT_S", 300),
            retry=RetryPolicy(base_s=float_setting(env, "RETRY_BASE_S", 1.0)),
            stop_grace_period_s=int_setting(env, "STOP_GRACE_PERIOD_S") if grace else None,
        )

    def replace(self, **changes) -> Self:
        return replace(self, **changes)

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise ConfigError(
                "REDIS_URL is not set: set it to your broker, e.g. redis://:PASSWORD@HOST:6379/0 "
                "(or set REDIS_HOST and REDIS_PASSWORD)"
            )
        return self.redis_url

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError(
                "DATABASE_URL is not set, and the idempotency store needs Postgres: set it to "
                "postgresql://USER:PASSWORD@HOST:5432/DBNAME (or set POSTGRES_HOST and POSTGRES_PASSWORD)"
            )
        return self.database_url

    # --- what every library derives -----------------------------------------------------------
    @property
    def hard_time_limit_s(self) -> float:
        """The latest a job can still be running, counted from its start."""
        return self.job_time_limit_s

    @property
    def lease_s(self) -> float:
        """How long an idempotency claim holds its key: a live run never loses it."""
        return self.hard_time_limit_s + LEASE_MARGIN_S

    @property
    def min_stop_grace_period_s(self) -> int:
        raise NotImplementedError

    @property
    def default_stop_grace_period_s(self) -> int:
        return self.min_stop_grace_period_s + self.grace_margin_s

    @property
    def effective_stop_grace_period_s(self) -> int:
        return self.stop_grace_period_s or self.default_stop_grace_period_s

    def check(self) -> Self:
        """Refuse settings under which a graceful stop could cut a job short."""
        if self.effective_stop_grace_period_s < self.min_stop_grace_period_s:
            raise ConfigError(
                f"STOP_GRACE_PERIOD_S={self.effective_stop_grace_period_s} is too short for "
                f"JOB_TIME_LIMIT_S={self.job_time_limit_s}: a warm shutdown of {self.library} waits for "
                f"{self.shutdown_waits_for}, so the grace period must be at least "
                f"{self.min_stop_grace_period_s} s or the job is killed mid-way. Set STOP_GRACE_PERIOD_S "
                f"(and your container's stop grace period / terminationGracePeriodSeconds) to "
                f"{self.default_stop_grace_period_s}"
            )
        return self


def compose_redis_url(env: Mapping[str, str]) -> str | None:
    """redis://:PASSWORD@REDIS_HOST:REDIS_PORT/0 from its parts, the password percent-encoded."""
    if not env.get("REDIS_PASSWORD") and not env.get("REDIS_HOST"):
        return None
    password = quote(env.get("REDIS_PASSWORD") or "", safe="")
    auth = f":{password}@" if password else ""
    host = env.get("REDIS_HOST") or "redis"
    return f"redis://{auth}{host}:{int_setting(env, 'REDIS_PORT', 6379)}/0"


def compose_postgres_url(env: Mapping[str, str]) -> str | None:
    """postgresql://USER:PASSWORD@HOST:PORT/DB from POSTGRES_* parts, percent-encoded."""
    if not env.get("POSTGRES_PASSWORD") and not env.get("POSTGRES_HOST"):
        return None
    user = quote(env.get("POSTGRES_USER") or "postgres", safe="")
    password = quote(env.get("POSTGRES_PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else f"{user}@"
    host = env.get("POSTGRES_HOST") or "postgres"
    port = int_setting(env, "POSTGRES_PORT", 5432)
    database = quote(env.get("POSTGRES_DB") or env.get("POSTGRES_USER") or "postgres", safe="")
    return f"postgresql://{auth}{host}:{port}/{database}"


# --- Celery ------------------------------------------------------------------------------------
# After the soft limit raises SoftTimeLimitExceeded inside the task, the task gets this long to
# clean up before the pool kills its process (the hard limit).
CELERY_HARD_LIMIT_MARGIN_S = 10
# A message delivered to a worker is handed to another one only after the visibility timeout,
# so it must outlast the longest time a message can stay unacknowledged in a live worker: a
# retried task is held through its countdown, then may wait for a free pool process (up to one
# hard limit, while the running jobs finish), then runs (up to another). The margin covers the
# gap between delivery and start, and clock drift between workers.
CELERY_VISIBILITY_MARGIN_S = 30
# How often each worker looks for messages whose visibility timeout has passed (abandoned by a
# killed worker) and puts them back in the queue. kombu's default is a scan every 100 s (a 10 s
# timer that scans on every 10th call); one ZRANGE every 5 s per worker is cheap.
CELERY_RESTORE_SWEEP_S = 5
# The warm shutdown needs a moment after the last job to ack, close connections and exit.
CELERY_SHUTDOWN_MARGIN_S = 10


@dataclass(frozen=True)
class CelerySettings(Settings):
    library: ClassVar[str] = "Celery"
    shutdown_waits_for: ClassVar[str] = "the running job, up to its hard limit"

    @property
    def hard_time_limit_s(self) -> int:
        return self.job_time_limit_s + CELERY_HARD_LIMIT_MARGIN_S

    @property
    def longest_countdown_s(self) -> float:
        """The longest countdown or ETA a task may be sent with: a message waiting for its ETA is
        held unacknowledged by a worker, and past the visibility timeout a second worker gets it."""
        return self.visibility_timeout_s - 2 * self.hard_time_limit_s - CELERY_VISIBILITY_MARGIN_S

    @property
    def visibility_timeout_s(self) -> int:
        # The longest countdown the toolkit sends: a retry's backoff (a deferral waits no longer).
        return math.ceil(self.retry.max_delay_s) + 2 * self.hard_time_limit_s + CELERY_VISIBILITY_MARGIN_S

    @property
    def redelivery_after_kill_s(self) -> int:
        """At most this long after a worker is killed, its running job is back in the queue."""
        return self.visibility_timeout_s + CELERY_RESTORE_SWEEP_S

    @property
    def min_stop_grace_period_s(self) -> int:
        return self.hard_time_limit_s + CELERY_SHUTDOWN_MARGIN_S


# --- RQ ----------------------------------------------------------------------------------------
# While a job runs, the worker's main process renews the job's claim in the started registry
# every RQ_JOB_MONITORING_INTERVAL_S, each time for min(that, time left) + 60 s (RQ's margin).
# A killed worker stops renewing: its job counts as abandoned at most this + 60 s later.
RQ_JOB_MONITORING_INTERVAL_S = 10
RQ_HEARTBEAT_MARGIN_S = 60
# An idle worker's key lives RQ_WORKER_TTL_S + 60 s. RQ's default (420 s) leaves an abandoned job
# unnoticed for minutes.
RQ_WORKER_TTL_S = 30
# An idle worker waits for a job this long at a time (RQ: RQ_WORKER_TTL_S - 15), then heartbeats
# and checks for maintenance; a worker told to stop while idle stops at the end of this wait.
RQ_IDLE_WAIT_S = 5
# How often a worker runs maintenance, which hands abandoned jobs to their Retry (RQ's default
# is 10 minutes; with it, a killed worker's job sat in "started" for 13.5 minutes here).
RQ_MAINTENANCE_INTERVAL_S = 15
# The scheduler (in a worker started with the scheduler) moves due jobs to the queue this often.
RQ_SCHEDULER_INTERVAL_S = 1
# After the job timeout, RQ's death penalty stops the job; the warm shutdown then needs a moment
# to record the failure and exit.
RQ_SHUTDOWN_MARGIN_S = 20
# Failed jobs (the dead letters) are kept this long; RQ's default is also a year.
RQ_FAILURE_TTL_S = 365 * 24 * 3600
# Results of finished jobs are kept this long (RQ's default: 500 s).
RQ_RESULT_TTL_S = 3600


@dataclass(frozen=True)
class RQSettings(Settings):
    library: ClassVar[str] = "RQ"

    @property
    def min_stop_grace_period_s(self) -> int:
        return self.job_time_limit_s + RQ_SHUTDOWN_MARGIN_S

    @property
    def redelivery_after_kill_s(self) -> float:
        """At most this long after a worker is killed, its running job runs again: the claim
        lapses, a maintenance pass (run between dequeues) retries it, the scheduler enqueues it."""
        claim_lapses = min(RQ_JOB_MONITORING_INTERVAL_S, self.job_time_limit_s) + RQ_HEARTBEAT_MARGIN_S
        maintenance = max(RQ_MAINTENANCE_INTERVAL_S, RQ_IDLE_WAIT_S)
        return claim_lapses + maintenance + self.retry.max_delay_s + RQ_SCHEDULER_INTERVAL_S


# --- Dramatiq ----------------------------------------------------------------------------------
# Dramatiq's TimeLimit looks for overdue actors once a second, then raises in the actor's thread;
# the actor unwinds, Retries enqueues the retry and the message is acked.
DRAMATIQ_TIME_LIMIT_LAG_S = 5
# After its worker threads are done, a stopping worker process stops its consumers (each within
# one poll), puts prefetched messages back in the queue, and exits.
DRAMATIQ_EXIT_MARGIN_S = 10
# An idle consumer polls Redis at most this often (Dramatiq's default: 1000 ms). It bounds the
# wait of the first job after an idle spell, at the cost of Redis calls: per worker process,
# two consumers (the queue and its delay queue) make up to 2 × 1000 / DRAMATIQ_POLL_MS calls a
# second when there is nothing to do (10 with 200 ms; Redis here serves ~60,000 a second).
DRAMATIQ_POLL_MS = 200
# Every broker call refreshes its process's heartbeat. Dramatiq's default timeout, 60 s, is kept
# as a floor; it also stays longer than the time limit, because an actor stuck in a C call that
# holds the GIL starves the heartbeats of its process, and its message must not be handed to a
# second worker while it still runs.
DRAMATIQ_MIN_HEARTBEAT_TIMEOUT_S = 60
DRAMATIQ_HEARTBEAT_OVER_TIME_LIMIT_S = 30
# How often each process sweeps each queue for the messages of dead workers (their heartbeat is
# older than the timeout). Dramatiq's default is a coin toss on 0.1 % of broker calls: with one
# idle worker that is every ~8 minutes on average, and a killed worker's message waited minutes
# to tens of minutes. Here it is once per interval, per queue and process.
DRAMATIQ_MAINTENANCE_INTERVAL_S = 5
# Dead letters are kept this long (Dramatiq's default: 7 days, then they are deleted).
DRAMATIQ_DEAD_MESSAGE_TTL_S = 365 * 24 * 3600


@dataclass(frozen=True)
class DramatiqSettings(Settings):
    library: ClassVar[str] = "Dramatiq"
    shutdown_waits_for: ClassVar[str] = "the running jobs, up to their time limit"
    grace_margin_s: ClassVar[int] = 15

    @property
    def hard_time_limit_s(self) -> int:
        return self.job_time_limit_s + DRAMATIQ_TIME_LIMIT_LAG_S

    @property
    def time_limit_ms(self) -> int:
        return self.job_time_limit_s * 1000

    @property
    def worker_shutdown_timeout_ms(self) -> int:
        """`--worker-shutdown-timeout`: the whole grace period, but for the time the process
        needs to exit after its last job (Dramatiq's default, 10 minutes, ignores both)."""
        return (self.effective_stop_grace_period_s - DRAMATIQ_EXIT_MARGIN_S) * 1000

    @property
    def min_stop_grace_period_s(self) -> int:
        return self.hard_time_limit_s + DRAMATIQ_EXIT_MARGIN_S

    @property
    def heartbeat_timeout_s(self) -> int:
        return max(
            DRAMATIQ_MIN_HEARTBEAT_TIMEOUT_S, self.job_time_limit_s + DRAMATIQ_HEARTBEAT_OVER_TIME_LIMIT_S
        )

    @property
    def redelivery_after_kill_s(self) -> float:
        """At most this long after a worker is killed, its messages are back in the queue: its
        heartbeat times out, then the next sweep of a live process (at most one interval and
        one poll later) moves them back."""
        return self.heartbeat_timeout_s + DRAMATIQ_MAINTENANCE_INTERVAL_S + DRAMATIQ_POLL_MS / 1000


# --- Arq ---------------------------------------------------------------------------------------
# The toolkit stops a job at JOB_TIME_LIMIT_S itself (so that a timeout is a retried attempt);
# Arq's own job_timeout, a few seconds later, is the backstop.
ARQ_JOB_TIMEOUT_MARGIN_S = 5
# Arq keeps a running job's in-progress key for job_timeout + 10 s (fixed in arq/worker.py):
# after a kill, the job is picked up again once it lapses.
ARQ_IN_PROGRESS_MARGIN_S = 10
# After the last job, the worker closes its Redis pool and exits.
ARQ_EXIT_MARGIN_S = 10
# How often the worker looks for due jobs (Arq's default: 0.5 s, and at most queue_read_limit
# jobs each time: with the defaults, 100 jobs per 0.5 s, whatever the hardware).
ARQ_POLL_DELAY_S = 0.05
# Jobs one worker runs at once (Arq's default: 10), and how many due job ids it reads per poll.
ARQ_MAX_JOBS = 32
ARQ_QUEUE_READ_LIMIT = 200
# Each worker writes its own health key (Arq's default: one key per queue, shared by every
# worker, refreshed hourly) this often, and touches its heartbeat file with it.
ARQ_HEALTH_CHECK_INTERVAL_S = 5
# Results are kept this long (Arq's default too): a cron run's kept result is what stops a late
# scheduler from enqueueing the same run again.
ARQ_KEEP_RESULT_S = 3600


@dataclass(frozen=True)
class ArqSettings(Settings):
    library: ClassVar[str] = "Arq"
    shutdown_waits_for: ClassVar[str] = "the running jobs, up to their time limit"
    grace_margin_s: ClassVar[int] = 15

    @property
    def arq_job_timeout_s(self) -> int:
        return self.job_time_limit_s + ARQ_JOB_TIMEOUT_MARGIN_S

    @property
    def hard_time_limit_s(self) -> int:
        return self.arq_job_timeout_s

    @property
    def job_completion_wait_s(self) -> int:
        """How long a graceful stop waits for running jobs before cancelling them (Arq's
        default, 0, cancels them at once and they run again from the start)."""
        return self.arq_job_timeout_s

    @property
    def min_stop_grace_period_s(self) -> int:
        return self.job_completion_wait_s + ARQ_EXIT_MARGIN_S

    @property
    def redelivery_after_kill_s(self) -> float:
        """At most this long after a worker is killed, its job runs again: its in-progress key
        lapses, and a worker's next poll picks the job up."""
        return self.arq_job_timeout_s + ARQ_IN_PROGRESS_MARGIN_S + ARQ_POLL_DELAY_S
