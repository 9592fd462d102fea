"""Every setting the recipe reads from the environment, and the timeouts derived from them.

Standard library only, so that the derivations can be unit-tested without RQ installed.
The numbers that couple each other (job timeout, heartbeat TTLs, stop grace period, the time
a killed worker's job takes to come back) come from JOB_TIME_LIMIT_S and the fixed intervals
below, and `check()` refuses a configuration in which they do not fit.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from urllib.parse import quote

# While a job runs, the worker's main process renews the job's claim in the started registry
# every JOB_MONITORING_INTERVAL_S, each time for min(that, time left) + 60 s (RQ's margin).
# A killed worker stops renewing: its job counts as abandoned at most this + 60 s later.
JOB_MONITORING_INTERVAL_S = 10
RQ_HEARTBEAT_MARGIN_S = 60
# An idle worker wakes every WORKER_TTL_S - 15 s (heartbeat, maintenance check); its key lives
# WORKER_TTL_S + 60 s. RQ's default (420 s) leaves an abandoned job unnoticed for minutes.
WORKER_TTL_S = 30
# How often a worker runs maintenance, which hands abandoned jobs to their Retry (RQ's default
# is 10 minutes; with it, a killed worker's job sat in "started" for 13.5 minutes here).
MAINTENANCE_INTERVAL_S = 15
# The scheduler (in a worker started with the scheduler) moves due retries to the queue this often.
SCHEDULER_INTERVAL_S = 1
# After the job timeout, RQ lets a job's own death penalty stop it; the warm shutdown then
# needs a moment to record the failure and exit.
SHUTDOWN_MARGIN_S = 20
MAX_RETRIES = 3  # the contract: 4 attempts per enqueue
# Failed jobs (the dead letters) are kept this long; RQ's default is also a year.
FAILURE_TTL_S = 365 * 24 * 3600


class ConfigError(ValueError):
    """A setting is missing, malformed, or does not fit with another one."""


def _int(env: dict[str, str], name: str, default: int | None = None, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ConfigError(f"{name} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be above 0, got {value}")
    return value


def _required(env: dict[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise ConfigError(f"{name} is required (set it in .env or the environment)")
    return value


@dataclass(frozen=True)
class Settings:
    redis_host: str
    redis_port: int
    redis_password: str
    postgres_dsn: str
    job_time_limit_s: int
    retry_base_s: float
    tick_interval_s: int
    stop_grace_period_s: int

    @property
    def min_stop_grace_period_s(self) -> int:
        return self.job_time_limit_s + SHUTDOWN_MARGIN_S

    @property
    def max_retry_delay_s(self) -> float:
        return retry_delay_s(MAX_RETRIES - 1, self.retry_base_s, jitter=1.0)

    @property
    def redelivery_after_kill_s(self) -> float:
        """At most this long after a worker is killed, its running job runs again: the claim
        lapses, a maintenance pass (run between dequeues) retries it, the scheduler enqueues it."""
        claim_lapses = min(JOB_MONITORING_INTERVAL_S, self.job_time_limit_s) + RQ_HEARTBEAT_MARGIN_S
        maintenance = max(MAINTENANCE_INTERVAL_S, WORKER_TTL_S - 15)
        return claim_lapses + maintenance + self.max_retry_delay_s + SCHEDULER_INTERVAL_S

    @property
    def redis_url(self) -> str:
        return f"redis://:{quote(self.redis_password, safe='')}@{self.redis_host}:{self.redis_port}/0"

    def check(self) -> Settings:
        """Refuse settings under which a graceful stop could cut a job short."""
        if self.stop_grace_period_s < self.min_stop_grace_period_s:
            raise ConfigError(
                f"STOP_GRACE_PERIOD_S={self.stop_grace_period_s} is too short for "
                f"JOB_TIME_LIMIT_S={self.job_time_limit_s}: a warm shutdown waits for the running "
                f"job, so the grace period must be at least {self.min_stop_grace_period_s} s or the "
                "job is killed mid-way"
            )
        return self


def retry_delay_s(retries_done: int, base_s: float, jitter: float | None = None) -> float:
    """Exponential backoff with up to +50 % jitter: base, 2×base, 4×base, … each × [1, 1.5).

    RQ has neither backoff nor jitter: `Retry` takes a list of intervals, computed from this at
    enqueue time. Jitter spreads retries of jobs that failed together; capping it at +50 %
    keeps every delay longer than the one before.
    """
    if jitter is None:
        jitter = random.random()
    return base_s * 2**retries_done * (1 + jitter / 2)


def load(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    job_time_limit_s = _int(env, "JOB_TIME_LIMIT_S", 300)
    postgres_password = quote(_required(env, "POSTGRES_PASSWORD"), safe="")
    postgres_user = env.get("POSTGRES_USER") or "taskq"
    postgres_db = env.get("POSTGRES_DB") or "taskq"
    postgres_host = env.get("POSTGRES_HOST") or "postgres"
    return Settings(
        redis_host=env.get("REDIS_HOST") or "redis",
        redis_port=_int(env, "REDIS_PORT", 6379),
        redis_password=_required(env, "REDIS_PASSWORD"),
        postgres_dsn=(f"postgresql://{postgres_user}:{postgres_password}@{postgres_host}:5432/{postgres_db}"),
        job_time_limit_s=job_time_limit_s,
        retry_base_s=_float(env, "RETRY_BASE_S", 1.0),
        tick_interval_s=_int(env, "TICK_INTERVAL_S", 60),
        stop_grace_period_s=_int(env, "STOP_GRACE_PERIOD_S", job_time_limit_s + SHUTDOWN_MARGIN_S),
    )
