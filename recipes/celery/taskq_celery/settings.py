"""Every setting the recipe reads from the environment, and the timeouts derived from them.

Standard library only, so that the derivations can be unit-tested without Celery installed.
The numbers that couple each other (time limit, visibility timeout, stop grace period) come
from JOB_TIME_LIMIT_S alone, and `check()` refuses a configuration in which they do not fit.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from urllib.parse import quote

# After the soft limit raises SoftTimeLimitExceeded inside the task, the task gets this long to
# clean up before the pool kills its process (the hard limit).
HARD_LIMIT_MARGIN_S = 10
# A message delivered to a worker is handed to another one only after the visibility timeout,
# so it must outlast the longest time a message can stay unacknowledged in a live worker: a
# retried task is held through its countdown, then may wait for a free pool process (up to one
# hard limit, while the running jobs finish), then runs (up to another). The margin covers the
# gap between delivery and start, and clock drift between workers.
VISIBILITY_MARGIN_S = 30
# How often each worker looks for messages whose visibility timeout has passed (abandoned by a
# killed worker) and puts them back in the queue. kombu's default is a scan every 100 s (a 10 s
# timer that scans on every 10th call); one ZRANGE every 5 s per worker is cheap.
RESTORE_SWEEP_S = 5
# The warm shutdown needs a moment after the last job to ack, close connections and exit.
SHUTDOWN_MARGIN_S = 10
MAX_RETRIES = 3  # the contract: 4 attempts per enqueue


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
    worker_concurrency: int

    @property
    def hard_time_limit_s(self) -> int:
        return self.job_time_limit_s + HARD_LIMIT_MARGIN_S

    @property
    def visibility_timeout_s(self) -> int:
        return math.ceil(self.max_retry_delay_s) + 2 * self.hard_time_limit_s + VISIBILITY_MARGIN_S

    @property
    def redelivery_after_kill_s(self) -> int:
        """At most this long after a worker is killed, its running job is back in the queue."""
        return self.visibility_timeout_s + RESTORE_SWEEP_S

    @property
    def min_stop_grace_period_s(self) -> int:
        return self.hard_time_limit_s + SHUTDOWN_MARGIN_S

    @property
    def max_retry_delay_s(self) -> float:
        return retry_delay_s(MAX_RETRIES - 1, self.retry_base_s, jitter=1.0)

    @property
    def redis_url(self) -> str:
        return f"redis://:{quote(self.redis_password, safe='')}@{self.redis_host}:{self.redis_port}/0"

    def check(self) -> Settings:
        """Refuse settings under which a job could be cut short or run twice."""
        if self.stop_grace_period_s < self.min_stop_grace_period_s:
            raise ConfigError(
                f"STOP_GRACE_PERIOD_S={self.stop_grace_period_s} is too short for "
                f"JOB_TIME_LIMIT_S={self.job_time_limit_s}: a warm shutdown waits for the running "
                f"job (up to its hard limit, {self.hard_time_limit_s} s), so the grace period must be "
                f"at least {self.min_stop_grace_period_s} s or the job is killed mid-way"
            )
        return self


def retry_delay_s(retries_done: int, base_s: float, jitter: float | None = None) -> float:
    """Exponential backoff with up to +50 % jitter: base, 2×base, 4×base, … each × [1, 1.5).

    Jitter spreads retries of jobs that failed together; capping it at +50 % keeps every delay
    longer than the one before, unlike Celery's built-in full jitter (`retry_jitter`), which
    draws whole seconds from [0, delay] and so can retry at once.
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
        stop_grace_period_s=_int(
            env, "STOP_GRACE_PERIOD_S", job_time_limit_s + HARD_LIMIT_MARGIN_S + SHUTDOWN_MARGIN_S
        ),
        worker_concurrency=_int(env, "WORKER_CONCURRENCY", 2),
    )
