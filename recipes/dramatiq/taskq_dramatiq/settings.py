"""Every setting the recipe reads from the environment, and the timeouts derived from them.

Standard library only, so that the derivations can be unit-tested without Dramatiq installed.
The numbers that couple each other (time limit, shutdown timeout, stop grace period, heartbeat
timeout, the time a killed worker's message takes to come back) come from JOB_TIME_LIMIT_S and
STOP_GRACE_PERIOD_S, and `check()` refuses a configuration in which they do not fit.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import ClassVar

from taskq_common.config import MAX_RETRIES, Common, ConfigError, common_settings, int_setting

__all__ = ["MAX_RETRIES", "RETRY_JITTER", "ConfigError", "Settings", "load", "retry_delay_s"]

# Dramatiq's TimeLimit looks for overdue actors once a second, then raises in the actor's thread;
# the actor unwinds, Retries enqueues the retry and the message is acked.
TIME_LIMIT_LAG_S = 5
# After its worker threads are done, a stopping worker process stops its consumers (each within
# one poll), puts prefetched messages back in the queue, and exits.
EXIT_MARGIN_S = 10
# An idle consumer polls Redis at most this often (Dramatiq's default: 1000 ms). It bounds the
# wait of the first job after an idle spell, at the cost of Redis calls: per worker process,
# two consumers (the queue and its delay queue) make up to 2 × 1000 / WORKER_POLL_MS calls a
# second when there is nothing to do (10 with 200 ms; Redis here serves ~60,000 a second).
WORKER_POLL_MS = 200
# Every broker call refreshes its process's heartbeat. Dramatiq's default timeout, 60 s, is kept
# as a floor; it also stays longer than the time limit, because an actor stuck in a C call that
# holds the GIL starves the heartbeats of its process, and its message must not be handed to a
# second worker while it still runs.
MIN_HEARTBEAT_TIMEOUT_S = 60
HEARTBEAT_OVER_TIME_LIMIT_S = 30
# How often each process sweeps each queue for the messages of dead workers (their heartbeat is
# older than the timeout). Dramatiq's default is a coin toss on 0.1 % of broker calls: with one
# idle worker that is every ~8 minutes on average, and a killed worker's message waited minutes
# to tens of minutes. Here it is once per MAINTENANCE_INTERVAL_S, per queue and process.
MAINTENANCE_INTERVAL_S = 5
# Dead letters are kept this long (Dramatiq's default: 7 days, then they are deleted).
DEAD_MESSAGE_TTL_S = 365 * 24 * 3600
# The largest share of jitter Dramatiq's backoff adds: it draws each delay from [1, 2) × the
# exponential step (dramatiq.common.compute_backoff).
RETRY_JITTER = 1.0


def retry_delay_s(retries_done: int, base_s: float, jitter: float | None = None) -> float:
    """The delay Dramatiq's Retries middleware draws before retry number retries_done + 1, with
    min_backoff = base_s: base, 2 × base, 4 × base, … each × (1 + jitter), jitter in [0, 1)."""
    if jitter is None:
        jitter = random.random()
    return base_s * 2**retries_done * (1 + jitter * RETRY_JITTER)


@dataclass(frozen=True)
class Settings(Common):
    worker_processes: int
    worker_threads: int

    shutdown_waits_for: ClassVar[str] = "the running jobs, up to their time limit"

    @property
    def time_limit_ms(self) -> int:
        return self.job_time_limit_s * 1000

    @property
    def min_backoff_ms(self) -> int:
        return round(self.retry_base_s * 1000)

    @property
    def worker_shutdown_timeout_ms(self) -> int:
        """`--worker-shutdown-timeout`: the whole grace period, but for the time the process
        needs to exit after its last job (Dramatiq's default, 10 minutes, ignores both)."""
        return (self.stop_grace_period_s - EXIT_MARGIN_S) * 1000

    @property
    def min_stop_grace_period_s(self) -> int:
        return self.job_time_limit_s + TIME_LIMIT_LAG_S + EXIT_MARGIN_S

    @property
    def heartbeat_timeout_s(self) -> int:
        return max(MIN_HEARTBEAT_TIMEOUT_S, self.job_time_limit_s + HEARTBEAT_OVER_TIME_LIMIT_S)

    @property
    def max_retry_delay_s(self) -> float:
        return retry_delay_s(MAX_RETRIES - 1, self.retry_base_s, jitter=1.0)

    @property
    def redelivery_after_kill_s(self) -> float:
        """At most this long after a worker is killed, its messages are back in the queue: its
        heartbeat times out, then the next sweep of a live process (at most one interval and
        one poll later) moves them back."""
        return self.heartbeat_timeout_s + MAINTENANCE_INTERVAL_S + WORKER_POLL_MS / 1000


def load(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    return Settings(
        **common_settings(env, grace_margin_s=30),
        worker_processes=int_setting(env, "WORKER_PROCESSES", 2),
        worker_threads=int_setting(env, "WORKER_THREADS", 4),
    )
