"""The RQ side: the queue, the job class that runs only allowlisted functions, and the worker.

Started as `python -m taskq_rq.worker` rather than `rq worker`, so that every interval below
comes from settings.py, the one place where they are derived and checked.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from redis import Redis
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from taskq_common.config import load_or_exit
from taskq_rq import settings as settings_module

settings = load_or_exit(settings_module.load)

QUEUE = "default"
HEARTBEAT_FILE = Path("/tmp/worker-heartbeat")
# The only functions a worker will run. A job names its function by dotted path, and RQ
# imports whatever it names: with the JSON serializer too, a job written into Redis for
# `os.system` would run it. Only this recipe's tasks are allowed, and no callbacks. (RQ's
# SpawnWorker ignores the job class, and with it this list: do not use it.)
ALLOWED_FUNCTIONS = frozenset({"taskq_rq.tasks.demo", "taskq_rq.tasks.send_report", "taskq_rq.tasks.tick"})

log = logging.getLogger(__name__)


class RefusedJobError(Exception):
    """A job names a function that is not on the allowlist."""


class AllowlistedJob(Job):
    """A Job that runs only allowlisted functions, and nothing else a job hash can name.

    Everything here is read from the job's hash in Redis, so everything is an attacker's
    choice: the function (refused before it is imported), callbacks and webhooks (ignored: the
    recipe uses none, and a callback raising during RQ's registry cleanup would stop the
    worker), and the hash itself (a malformed one is treated as missing, not as a crash).
    """

    @property
    def func(self):
        name = self.func_name  # decodes the JSON payload; imports nothing
        if self.instance is not None or name not in ALLOWED_FUNCTIONS:
            self.retries_left = 0  # retrying cannot make it allowed
            log.error("refusing job %s: %r is not on the allowlist", self.id, name)
            raise RefusedJobError(f"function {name!r} is not on the allowlist")
        return super().func

    def _ignored_callback(self, name: str | None, what: str) -> None:
        if name:
            log.error("ignoring job %s's %s %r: callbacks are not allowed", self.id, what, name)

    @property
    def success_callback(self):
        self._ignored_callback(self._success_callback_name, "success callback")

    @property
    def failure_callback(self):
        self._ignored_callback(self._failure_callback_name, "failure callback")

    @property
    def stopped_callback(self):
        self._ignored_callback(self._stopped_callback_name, "stopped callback")

    def send_webhooks(self, status, *, exc_string=None) -> None:
        pass  # the URLs would come from the job hash

    def restore(self, raw_data):
        # RQ re-raises a parse error out of dequeue and the worker quits (exit 0), to crash again
        # on the same job at its next start. A job it cannot read is skipped instead.
        try:
            return super().restore(raw_data)
        except NoSuchJobError:
            raise
        except Exception as error:
            log.error("skipping job %s: its hash cannot be read: %s", self.id, error)
            raise NoSuchJobError(f"unreadable job hash {self.id}") from error


class HeartbeatWorker(Worker):
    """RQ's forking worker, touching HEARTBEAT_FILE at each of its heartbeats.

    It heartbeats every WORKER_TTL_S - 15 s when idle and every JOB_MONITORING_INTERVAL_S
    while a job runs (from the main process, which watches the forked work horse), and stops
    when it cannot reach Redis: a stale file means a worker that is not working, where
    `rq info` would still exit 0.
    """

    def heartbeat(self, *args, **kwargs):
        super().heartbeat(*args, **kwargs)
        HEARTBEAT_FILE.touch()


def connection() -> Redis:
    return Redis.from_url(settings.redis_url, socket_timeout=None, socket_connect_timeout=5)


def queue(redis: Redis) -> Queue:
    return Queue(QUEUE, connection=redis, serializer=JSONSerializer, job_class=AllowlistedJob)


@functools.cache
def default_queue() -> Queue:
    """The queue on one connection pool per process (redis-py's pool reconnects after a fork),
    rather than a new client, and a new authenticated connection, for every enqueue."""
    return queue(connection())


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Imported once here, before any fork, so that each work horse inherits the tasks and
    # their imports (psycopg, ...) instead of importing them again for every job.
    import taskq_rq.tasks  # noqa: F401

    redis = connection()
    worker = HeartbeatWorker(
        [queue(redis)],
        connection=redis,
        serializer=JSONSerializer,
        job_class=AllowlistedJob,
        worker_ttl=settings_module.WORKER_TTL_S,
        maintenance_interval=settings_module.MAINTENANCE_INTERVAL_S,
        job_monitoring_interval=settings_module.JOB_MONITORING_INTERVAL_S,
    )
    # with_scheduler: retries with an interval wait in the ScheduledJobRegistry until a
    # scheduler moves them to the queue; every worker offers to run it, one holds the lock.
    worker.work(with_scheduler=True, logging_level="INFO")


if __name__ == "__main__":
    main()
