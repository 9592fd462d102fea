"""Every setting the recipe reads from the environment, and the timeouts derived from them.

Standard library only, so that the derivations can be unit-tested without RQ installed.
The numbers that couple each other (job timeout, heartbeat TTLs, stop grace period, the time
a killed worker's job takes to come back) come from JOB_TIME_LIMIT_S and the fixed intervals
below, and `check()` refuses a configuration in which they do not fit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from taskq_common.config import MAX_RETRIES, RETRY_JITTER, Common, ConfigError, common_settings, retry_delay_s

__all__ = ["MAX_RETRIES", "RETRY_JITTER", "ConfigError", "Settings", "load", "retry_delay_s"]

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
# Failed jobs (the dead letters) are kept this long; RQ's default is also a year.
FAILURE_TTL_S = 365 * 24 * 3600


@dataclass(frozen=True)
class Settings(Common):
    @property
    def min_stop_grace_period_s(self) -> int:
        return self.job_time_limit_s + SHUTDOWN_MARGIN_S

    @property
    def redelivery_after_kill_s(self) -> float:
        """At most this long after a worker is killed, its running job runs again: the claim
        lapses, a maintenance pass (run between dequeues) retries it, the scheduler enqueues it."""
        claim_lapses = min(JOB_MONITORING_INTERVAL_S, self.job_time_limit_s) + RQ_HEARTBEAT_MARGIN_S
        maintenance = max(MAINTENANCE_INTERVAL_S, WORKER_TTL_S - 15)
        return claim_lapses + maintenance + self.max_retry_delay_s + SCHEDULER_INTERVAL_S


def load(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    return Settings(**common_settings(env, grace_margin_s=SHUTDOWN_MARGIN_S))
