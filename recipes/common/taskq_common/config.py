"""Reading the settings every recipe shares from the environment, and the retry backoff.

Standard library only, so that each recipe's settings (and their derivations) can be unit-tested
without its job library installed.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar
from urllib.parse import quote

MAX_RETRIES = 3  # the contract: 4 attempts per enqueue
# The most jitter retry_delay_s adds to a step, as a share of it.
RETRY_JITTER = 0.5


class ConfigError(ValueError):
    """A setting is missing, malformed, or does not fit with another one."""


def int_setting(env: dict[str, str], name: str, default: int | None = None, minimum: int = 1) -> int:
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


def float_setting(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be above 0, got {value}")
    return value


def required_setting(env: dict[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise ConfigError(f"{name} is required (set it in .env or the environment)")
    return value


@dataclass(frozen=True)
class Common:
    """The settings every stack reads, whatever its job library. A recipe's Settings extends it
    with what its library derives from them, and says how long a graceful stop must wait."""

    redis_url: str
    postgres_dsn: str
    job_time_limit_s: int
    retry_base_s: float
    tick_interval_s: int
    stop_grace_period_s: int

    # What the worker's graceful stop waits for, for the error message.
    shutdown_waits_for: ClassVar[str] = "the running job"

    @property
    def min_stop_grace_period_s(self) -> int:
        raise NotImplementedError

    @property
    def max_retry_delay_s(self) -> float:
        return retry_delay_s(MAX_RETRIES - 1, self.retry_base_s, jitter=1.0)

    def check(self) -> Self:
        """Refuse settings under which a graceful stop could cut a job short."""
        if self.stop_grace_period_s < self.min_stop_grace_period_s:
            raise ConfigError(
                f"STOP_GRACE_PERIOD_S={self.stop_grace_period_s} is too short for "
                f"JOB_TIME_LIMIT_S={self.job_time_limit_s}: a warm shutdown waits for "
                f"{self.shutdown_waits_for}, so the grace period must be at least "
                f"{self.min_stop_grace_period_s} s or the job is killed mid-way"
            )
        return self


def common_settings(env: dict[str, str], grace_margin_s: int) -> dict[str, Any]:
    """The shared fields, for a Settings(Common) constructor; the stop grace period defaults to
    the job time limit plus the recipe's margin.

    REDIS_URL and DATABASE_URL, when set, are used as they are (an external Redis or Postgres,
    e.g. rediss:// with TLS, or a managed database); otherwise the URLs are built from the
    compose stack's host names and passwords."""
    job_time_limit_s = int_setting(env, "JOB_TIME_LIMIT_S", 300)
    return {
        "redis_url": env.get("REDIS_URL") or compose_redis_url(env),
        "postgres_dsn": env.get("DATABASE_URL") or compose_postgres_dsn(env),
        "job_time_limit_s": job_time_limit_s,
        "retry_base_s": float_setting(env, "RETRY_BASE_S", 1.0),
        "tick_interval_s": int_setting(env, "TICK_INTERVAL_S", 60),
        "stop_grace_period_s": int_setting(env, "STOP_GRACE_PERIOD_S", job_time_limit_s + grace_margin_s),
    }


def compose_redis_url(env: dict[str, str]) -> str:
    password = quote(required_setting(env, "REDIS_PASSWORD"), safe="")
    host = env.get("REDIS_HOST") or "redis"
    return f"redis://:{password}@{host}:{int_setting(env, 'REDIS_PORT', 6379)}/0"


def compose_postgres_dsn(env: dict[str, str]) -> str:
    password = quote(required_setting(env, "POSTGRES_PASSWORD"), safe="")
    user = env.get("POSTGRES_USER") or "taskq"
    host = env.get("POSTGRES_HOST") or "postgres"
    return f"postgresql://{user}:{password}@{host}:5432/{env.get('POSTGRES_DB') or 'taskq'}"


SettingsT = TypeVar("SettingsT", bound=Common)


def load_or_exit(load: Callable[[], SettingsT]) -> SettingsT:
    """The checked settings, or exit with the reason (no traceback): for a process's start-up."""
    try:
        return load().check()
    except ConfigError as error:
        sys.exit(f"taskq: configuration error: {error}")


def retry_delay_s(retries_done: int, base_s: float, jitter: float | None = None) -> float:
    """Exponential backoff with up to +50 % jitter: base, 2×base, 4×base, … each × [1, 1.5).

    Jitter spreads retries of jobs that failed together; capping it at +50 % keeps every delay
    longer than the one before, unlike Celery's built-in full jitter (`retry_jitter`), which
    draws whole seconds from [0, delay] and so can retry at once.
    """
    if jitter is None:
        jitter = random.random()
    return base_s * 2**retries_done * (1 + jitter * RETRY_JITTER)
