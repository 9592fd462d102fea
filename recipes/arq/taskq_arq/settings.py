"""Every setting the recipe reads from the environment, and the timeouts derived from them.

Standard library only, so that the derivations can be unit-tested without Arq installed.
The numbers that couple each other (time limit, Arq's job timeout and in-progress lifetime,
job_completion_wait, stop grace period) come from JOB_TIME_LIMIT_S, and `check()` refuses a
configuration in which they do not fit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

from taskq_common.config import (
    MAX_RETRIES,
    RETRY_JITTER,
    Common,
    ConfigError,
    common_settings,
    int_setting,
    retry_delay_s,
)

__all__ = ["MAX_RETRIES", "RETRY_JITTER", "ConfigError", "Settings", "load", "retry_delay_s"]

# Arq counts tries, not retries: the first run and three retries.
MAX_TRIES = MAX_RETRIES + 1
# The recipe stops a job at JOB_TIME_LIMIT_S itself (so that a timeout is a retried attempt);
# Arq's own job_timeout, a few seconds later, is the backstop.
JOB_TIMEOUT_MARGIN_S = 5
# Arq keeps a running job's in-progress key for job_timeout + 10 s (fixed in arq/worker.py):
# after a kill, the job is picked up again once it lapses.
ARQ_IN_PROGRESS_MARGIN_S = 10
# After the last job, the worker closes its Redis pool and exits.
EXIT_MARGIN_S = 10
# How often the worker looks for due jobs (Arq's default: 0.5 s, and at most queue_read_limit
# jobs each time: with the defaults, 100 jobs per 0.5 s, whatever the hardware).
POLL_DELAY_S = 0.05
# Jobs one worker runs at once (Arq's default: 10), and how many due job ids it reads per poll.
MAX_JOBS = 32
QUEUE_READ_LIMIT = 200
# Each worker writes its own health key (Arq's default: one key per queue, shared by every
# worker, refreshed hourly) this often, and touches its heartbeat file with it.
HEALTH_CHECK_INTERVAL_S = 5


@dataclass(frozen=True)
class Settings(Common):
    max_jobs: int

    shutdown_waits_for: ClassVar[str] = "the running jobs, up to their time limit"

    @property
    def arq_job_timeout_s(self) -> int:
        return self.job_time_limit_s + JOB_TIMEOUT_MARGIN_S

    @property
    def job_completion_wait_s(self) -> int:
        """How long a graceful stop waits for running jobs before cancelling them (Arq's
        default, 0, cancels them at once and they run again from the start)."""
        return self.arq_job_timeout_s

    @property
    def min_stop_grace_period_s(self) -> int:
        return self.job_completion_wait_s + EXIT_MARGIN_S

    @property
    def redelivery_after_kill_s(self) -> float:
        """At most this long after a worker is killed, its job runs again: its in-progress key
        lapses, and a worker's next poll picks the job up."""
        return self.arq_job_timeout_s + ARQ_IN_PROGRESS_MARGIN_S + POLL_DELAY_S

    def tick_cron_fields(self) -> dict[str, Any]:
        """Arq's cron fields for a tick at every multiple of TICK_INTERVAL_S since the epoch
        (UTC): the interval must divide a minute, an hour or a day into equal parts."""
        interval = self.tick_interval_s
        if 60 % interval == 0:
            return {"second": set(range(0, 60, interval))}
        if interval % 60 == 0 and 3600 % interval == 0:
            return {"second": {0}, "minute": set(range(0, 60, interval // 60))}
        if interval % 3600 == 0 and 86400 % interval == 0:
            return {"second": {0}, "minute": {0}, "hour": set(range(0, 24, interval // 3600))}
        raise ConfigError(
            f"TICK_INTERVAL_S={interval} is not a cron schedule: use a divisor of 60 s, or whole "
            "minutes dividing an hour, or whole hours dividing a day"
        )

    def check(self) -> Settings:
        super().check()
        self.tick_cron_fields()
        return self


def load(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    return Settings(
        **common_settings(env, grace_margin_s=JOB_TIMEOUT_MARGIN_S + EXIT_MARGIN_S + 15),
        max_jobs=int_setting(env, "WORKER_MAX_JOBS", MAX_JOBS),
    )
