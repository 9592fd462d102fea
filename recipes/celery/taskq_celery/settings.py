"""Every setting the recipe reads from the environment, and the timeouts derived from them.

Standard library only, so that the derivations can be unit-tested without Celery installed.
The numbers that couple each other (time limit, visibility timeout, stop grace period) come
from JOB_TIME_LIMIT_S alone, and `check()` refuses a configuration in which they do not fit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import ClassVar

from taskq_common.config import RETRY_JITTER, Common, ConfigError, common_settings, int_setting, retry_delay_s

__all__ = ["RETRY_JITTER", "ConfigError", "Settings", "load", "retry_delay_s"]

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


@dataclass(frozen=True)
class Settings(Common):
    worker_concurrency: int

    shutdown_waits_for: ClassVar[str] = "the running job, up to its hard limit"

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


def load(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    return Settings(
        **common_settings(env, grace_margin_s=HARD_LIMIT_MARGIN_S + SHUTDOWN_MARGIN_S),
        worker_concurrency=int_setting(env, "WORKER_CONCURRENCY", 2),
    )
