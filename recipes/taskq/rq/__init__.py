"""The toolkit for an app's own RQ queues (RQ 2.x).

    jobs = taskq.rq.Jobs(queues=["default", "emails"])    # REDIS_URL, or connection=your Redis

    @jobs.job                          # registered: allowlisted, retried with the policy
    def send_invoice(order_id, *, copy_to=None): ...

    jobs.enqueue(send_invoice, 42, copy_to="a@b")                 # the producer side
    jobs.enqueue_to("emails", send_invoice, 42)
    jobs.add_schedule(Entry("nightly", "0 3 * * *", send_invoice, args=(0,)))

    python -m taskq.rq worker myapp.jobs:jobs         # the worker (RQ's, configured below)
    python -m taskq.rq scheduler myapp.jobs:jobs      # the schedule, each slot once

What it sets, and why:
- JSON, and a job class that runs only registered functions: RQ imports whatever function a job
  names, so with any serializer a job written into Redis for `os.system` would run it. Callbacks
  and webhooks named in a job are ignored (the URLs and functions would come from Redis), and a
  job hash that cannot be read is skipped instead of stopping the worker.
- Every enqueue carries a Retry (3 retries, backoff with jitter) and timeouts from the settings:
  job timeout JOB_TIME_LIMIT_S, failed jobs kept a year. A failure that is not transient (the
  policy's classification) goes straight to the failed registry: a retry cannot fix it.
- `RetryLater` (an idempotency key held by a live run) reschedules the job without spending a retry.
- Worker TTL 30 s, maintenance every 15 s, job monitoring every 10 s: a killed worker's job runs
  again within about 80 s (RQ's defaults: 7 to 14 minutes), and a heartbeat file for the probe.
- Requeueing a dead letter gives it a fresh set of retries (RQ's own requeue does not).
- An idle worker told to stop takes no more jobs and stops within RQ_IDLE_WAIT_S (5 s): RQ's own
  stop can strand a job enqueued at that moment until maintenance fails it, a minute or more later.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue, Retry, SimpleWorker, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException
from rq.worker import WorkerStatus

from taskq.context import running
from taskq.errors import ConfigError
from taskq.heartbeat import DEFAULT_SCHEDULER_FILE, DEFAULT_WORKER_FILE, Heartbeat
from taskq.idempotency import identity_of
from taskq.presence import Presence, count_outcome
from taskq.retry import RetryLater, RetryPolicy
from taskq.schedule import Entry, SlotLoop
from taskq.settings import (
    RQ_FAILURE_TTL_S,
    RQ_IDLE_WAIT_S,
    RQ_JOB_MONITORING_INTERVAL_S,
    RQ_MAINTENANCE_INTERVAL_S,
    RQ_RESULT_TTL_S,
    RQ_WORKER_TTL_S,
    RQSettings,
)

__all__ = ["Jobs", "RefusedJobError"]

log = logging.getLogger("taskq.rq")
IDENTITY_META = "taskq_idempotency"


class RefusedJobError(Exception):
    """A job names a function that was not registered with the app's Jobs."""


class ToolkitJob(Job):
    """A Job that runs only registered functions, and nothing else a job hash can name.

    Everything here is read from the job's hash in Redis, so everything is an attacker's choice:
    the function (refused before it is imported), callbacks and webhooks (ignored), and the hash
    itself (a malformed one is treated as missing, not as a crash)."""

    jobs: Jobs  # set on the subclass each Jobs makes

    @property
    def func(self):
        name = self.func_name  # decodes the JSON payload; imports nothing
        if self.instance is not None or name not in self.jobs.registered:
            self.retries_left = 0  # retrying cannot make it allowed
            log.error("refusing job %s: %r is not a registered function", self.id, name)
            raise RefusedJobError(f"function {name!r} is not registered with taskq.rq.Jobs")
        return super().func

    def _execute(self) -> Any:
        with running(self.func_name.rsplit(".", 1)[-1]):
            try:
                return super()._execute()
            except BaseException as error:
                if (identity := identity_of(error)) is not None:
                    self.meta[IDENTITY_META] = list(identity)
                    self.save_meta()
                raise

    def _ignored(self, name: str | None, what: str) -> None:
        if name:
            log.error("ignoring job %s's %s %r: callbacks are not allowed", self.id, what, name)

    @property
    def success_callback(self):
        self._ignored(self._success_callback_name, "success callback")

    @property
    def failure_callback(self):
        self._ignored(self._failure_callback_name, "failure callback")

    @property
    def stopped_callback(self):
        self._ignored(self._stopped_callback_name, "stopped callback")

    def send_webhooks(self, *args, **kwargs) -> None:
        pass  # the URLs would come from the job hash

    def restore(self, raw_data):
        # RQ re-raises a parse error out of dequeue and the worker quits, to crash again on the
        # same job at its next start. A job it cannot read is skipped instead.
        try:
            return super().restore(raw_data)
        except NoSuchJobError:
            raise
        except Exception as error:
            log.error("skipping job %s: its hash cannot be read: %s", self.id, error)
            raise NoSuchJobError(f"unreadable job hash {self.id}") from error


class ToolkitWorkerMixin:
    """The policy's classification, RetryLater without spending a retry, and the heartbeat file.
    The failure path runs in the work horse (forking Worker) or in-process (SimpleWorker)."""

    jobs: Jobs
    _failure: BaseException | None = None

    def handle_exception(self, job: Job, *exc_info):
        self._failure = exc_info[1]
        if isinstance(exc_info[1], RetryLater):
            return None  # not an error: no traceback in the log, no exception handlers
        return super().handle_exception(job, *exc_info)

    def handle_job_success(self, job: Job, queue: Queue, *args, **kwargs):
        super().handle_job_success(job, queue, *args, **kwargs)
        count_outcome(self.connection, queue.name, "succeeded")

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry=None, exc_string: str = ""):
        failure, self._failure = self._failure, None
        if isinstance(failure, RetryLater):
            count_outcome(self.connection, queue.name, "retried")
            wait = max(1, math.ceil(self.jobs.settings.retry.defer_s(failure.retry_after_s)))
            with self.connection.pipeline() as pipe:
                self.cleanup_execution(job, pipeline=pipe)
                job.set_status(JobStatus.SCHEDULED, pipeline=pipe)
                queue.schedule_job(job, datetime.now(UTC) + timedelta(seconds=wait), pipeline=pipe)
                pipe.execute()
            return None
        if failure is not None and not self.jobs.is_transient(failure):
            job.retries_left = 0  # a retry cannot fix it: a dead letter now
        count_outcome(self.connection, queue.name, "retried" if job.retries_left else "dead")
        return super().handle_job_failure(
            job=job, queue=queue, started_job_registry=started_job_registry, exc_string=exc_string
        )

    # RQ's warm shutdown of an idle worker raises StopRequested from the signal handler, after
    # stopping the worker's scheduler (half a second). Its blocking BLMOVE stays open on the
    # server meanwhile: a job enqueued then is moved to the queue's intermediate list for a
    # client that never reads it, and comes back only when maintenance fails it a minute or more
    # later (charging it a retry). Seen on every rollout whose first job came right after it.
    # So an idle worker told to stop takes no job: it ends its current wait (RQ_IDLE_WAIT_S)
    # and puts back a job that arrived in it.
    def _shutdown(self):
        if self.get_state() == WorkerStatus.BUSY:
            return super()._shutdown()
        self._stop_requested = True
        if self.scheduler:
            self.stop_scheduler()
        return None

    @property
    def dequeue_timeout(self) -> int:
        return RQ_IDLE_WAIT_S

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        if timeout is None or max_idle_time is not None:  # burst, or the caller's own idle limit
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        else:
            result = None
            while result is None and not self._stop_requested:
                # One wait at a time (an idle limit of one wait), to see a stop request between them.
                result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=timeout)
        if result is not None and self._stop_requested:
            job, queue = result
            with self.connection.pipeline() as pipe:  # MULTI: the job is in one list or the other
                pipe.lrem(queue.intermediate_queue_key, 1, job.id)
                pipe.lpush(queue.key, job.id)
                pipe.execute()
            log.info("stopping: job %s goes back to the head of %s", job.id, queue.name)
            return None
        if result is None:
            log.info("stopping on request")
        return result

    def heartbeat(self, *args, **kwargs):
        super().heartbeat(*args, **kwargs)
        self.jobs.worker_heartbeat.beat()
        # Only the worker's own process announces it; a forked work horse beats too.
        if self._presence is not None and self._presence_pid == os.getpid():
            self._presence.announce(self.connection)

    _presence: Presence | None = None
    _presence_pid: int | None = None

    def register_birth(self, *args, **kwargs):
        super().register_birth(*args, **kwargs)
        self._presence, self._presence_pid = Presence("worker", 1), os.getpid()
        self._presence.announce(self.connection)

    def register_death(self, *args, **kwargs):
        super().register_death(*args, **kwargs)
        if self._presence is not None:
            self._presence.withdraw(self.connection)


class Jobs:
    """An app's RQ jobs: the registered functions, its queues, how they are enqueued and run."""

    def __init__(
        self,
        *,
        connection: Redis | Callable[[], Redis] | None = None,
        queues: Iterable[str] = ("default",),
        settings: RQSettings | None = None,
        worker_heartbeat_file: str | Path = DEFAULT_WORKER_FILE,
        scheduler_heartbeat_file: str | Path = DEFAULT_SCHEDULER_FILE,
    ) -> None:
        self.queue_names = list(queues)
        if not self.queue_names:
            raise ConfigError("taskq.rq.Jobs needs at least one queue name")
        self._connection = connection
        self._settings = settings
        self.registered: dict[str, Callable] = {}
        self.schedule: list[Entry] = []
        self.worker_heartbeat = Heartbeat(worker_heartbeat_file)
        self.scheduler_heartbeat = Heartbeat(scheduler_heartbeat_file)
        self.job_class = type("Job", (ToolkitJob,), {"jobs": self})
        self.worker_class = type("Worker", (ToolkitWorkerMixin, Worker), {"jobs": self})
        self.simple_worker_class = type("SimpleWorker", (ToolkitWorkerMixin, SimpleWorker), {"jobs": self})

    # --- configuration, read when first needed --------------------------------------------------
    @functools.cached_property
    def settings(self) -> RQSettings:
        return self._settings or RQSettings.from_env()

    @functools.cached_property
    def connection(self) -> Redis:
        """One connection pool per process (redis-py's pool reconnects after a fork)."""
        if isinstance(self._connection, Redis):
            return self._connection
        if callable(self._connection):
            return self._connection()
        url = self.settings.require_redis_url()
        return Redis.from_url(url, socket_timeout=None, socket_connect_timeout=5)

    def is_transient(self, error: BaseException) -> bool:
        # RQ's own time limit counts as a failed attempt, retried like a transient error.
        return isinstance(error, JobTimeoutException) or self.settings.retry.is_transient(error)

    # --- the producer side -----------------------------------------------------------------------
    def job(self, func: Callable | None = None, *, retry: bool = True) -> Any:
        """Register a function (as a decorator, with or without arguments). retry=False: its jobs
        are enqueued without retries."""

        def register(f: Callable) -> Callable:
            name = f"{f.__module__}.{f.__qualname__}"
            if "<locals>" in name:
                raise ConfigError(f"{name}: RQ imports a job's function by name, so it must be module-level")
            self.registered[name] = f
            f.taskq_retry = retry
            return f

        return register(func) if func is not None else register

    def queue(self, name: str | None = None) -> Queue:
        name = name or self.queue_names[0]
        if name not in self.queue_names:
            raise ConfigError(f"queue {name!r} is not one of this app's queues {self.queue_names}")
        return self._queues[name]

    @functools.cached_property
    def _queues(self) -> dict[str, Queue]:
        return {
            name: Queue(name, connection=self.connection, serializer=JSONSerializer, job_class=self.job_class)
            for name in self.queue_names
        }

    def retry_policy(self) -> Retry:
        """RQ's Retry with the intervals drawn now (RQ has no backoff of its own); whole seconds,
        as RQ schedules by the second."""
        policy: RetryPolicy = self.settings.retry
        intervals = [max(1, math.ceil(policy.delay_s(n))) for n in range(policy.max_retries)]
        return Retry(max=policy.max_retries, interval=intervals)

    def enqueue(self, func: Callable, *args: Any, **kwargs: Any) -> Job:
        """Enqueue func(*args, **kwargs) on the first queue (see enqueue_to)."""
        return self.enqueue_to(self.queue_names[0], func, *args, **kwargs)

    def enqueue_to(
        self, queue: str, func: Callable, *args: Any, job_id: str | None = None, **kwargs: Any
    ) -> Job:
        """Enqueue a registered function with positional and keyword arguments, its retries and
        timeouts. Only `job_id` is taken for the job itself (RQ's own enqueue keeps a dozen names)."""
        name = f"{func.__module__}.{func.__qualname__}"
        if self.registered.get(name) is not func:
            raise ConfigError(f"{name} is not registered: decorate it with @jobs.job so workers will run it")
        return self.queue(queue).enqueue_call(
            func,
            args=args,
            kwargs=kwargs,
            timeout=self.settings.job_time_limit_s,
            result_ttl=RQ_RESULT_TTL_S,
            failure_ttl=RQ_FAILURE_TTL_S,
            retry=self.retry_policy() if getattr(func, "taskq_retry", True) else None,
            job_id=job_id,
        )

    def add_schedule(self, *entries: Entry) -> None:
        for entry in entries:
            if entry.task not in self.registered.values():
                self.job(entry.task)
            self.schedule.append(entry)

    # --- the worker side -------------------------------------------------------------------------
    def worker(self, queues: Iterable[str] | None = None, simple: bool = False) -> Worker:
        """A worker for these queues (all of them by default), in priority order."""
        names = list(queues or self.queue_names)
        cls = self.simple_worker_class if simple else self.worker_class
        return cls(
            [self.queue(name) for name in names],
            connection=self.connection,
            serializer=JSONSerializer,
            job_class=self.job_class,
            worker_ttl=RQ_WORKER_TTL_S,
            maintenance_interval=RQ_MAINTENANCE_INTERVAL_S,
            job_monitoring_interval=RQ_JOB_MONITORING_INTERVAL_S,
        )

    def work(self, queues: Iterable[str] | None = None, simple: bool = False) -> bool:
        """Run a worker until SIGTERM: the running job finishes, the worker exits 0. Retries with a
        delay wait in the scheduled registry until a scheduler moves them: every worker offers to
        run it, one holds the lock."""
        self.settings.check()
        return self.worker(queues, simple).work(with_scheduler=True, logging_level="INFO")

    def scheduler(self) -> SlotLoop:
        def send(entry: Entry, slot: int) -> None:
            self.enqueue(entry.task, *entry.args, **entry.call_kwargs(slot))

        return SlotLoop(self.schedule, self.connection, send, heartbeat=self.scheduler_heartbeat)

    # --- the ops CLI -------------------------------------------------------------------------------
    def __taskq_operations__(self):
        from taskq.rq.ops import operations

        return operations(self)
