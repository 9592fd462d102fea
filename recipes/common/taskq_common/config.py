"""Reading the settings every recipe shares from the environment, and the retry backoff.

Standard library only, so that each recipe's settings (and their derivations) can be unit-tested
without its job library installed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import quote

MAX_RETRIES = 3  # the contract: 4 attempts per enqueue


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
    """The settings every stack reads, whatever its job library."""

    redis_url: str
    postgres_dsn: str
    job_time_limit_s: int
    retry_base_s: float
    tick_interval_s: int


def common_settings(env: dict[str, str]) -> Common:
    redis_password = quote(required_setting(env, "REDIS_PASSWORD"), safe="")
    redis_host = env.get("REDIS_HOST") or "redis"
    redis_port = int_setting(env, "REDIS_PORT", 6379)
    postgres_password = quote(required_setting(env, "POSTGRES_PASSWORD"), safe="")
    postgres_user = env.get("POSTGRES_USER") or "taskq"
    postgres_db = env.get("POSTGRES_DB") or "taskq"
    postgres_host = env.get("POSTGRES_HOST") or "postgres"
    return Common(
        redis_url=f"redis://:{redis_password}@{redis_host}:{redis_port}/0",
        postgres_dsn=f"postgresql://{postgres_user}:{postgres_password}@{postgres_host}:5432/{postgres_db}",
        job_time_limit_s=int_setting(env, "JOB_TIME_LIMIT_S", 300),
        retry_base_s=float_setting(env, "RETRY_BASE_S", 1.0),
        tick_interval_s=int_setting(env, "TICK_INTERVAL_S", 60),
    )


def grace_period_error(
    stop_grace_period_s: int, job_time_limit_s: int, minimum_s: int, why: str
) -> ConfigError:
    return ConfigError(
        f"STOP_GRACE_PERIOD_S={stop_grace_period_s} is too short for JOB_TIME_LIMIT_S={job_time_limit_s}: "
        f"{why}, so the grace period must be at least {minimum_s} s or the job is killed mid-way"
    )


def retry_delay_s(retries_done: int, base_s: float, jitter: float | None = None) -> float:
    """Exponential backoff with up to +50 % jitter: base, 2×base, 4×base, … each × [1, 1.5).

    Jitter spreads retries of jobs that failed together; capping it at +50 % keeps every delay
    longer than the one before, unlike Celery's built-in full jitter (`retry_jitter`), which
    draws whole seconds from [0, delay] and so can retry at once.
    """
    if jitter is None:
        jitter = random.random()
    return base_s * 2**retries_done * (1 + jitter / 2)
