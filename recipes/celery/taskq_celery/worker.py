"""The Celery application: broker, serialization, acknowledgement and time limits.

Each setting below is one of the decisions that keeps a Celery deployment from running jobs
twice, losing them on deploys, or executing what an attacker wrote into Redis.
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery, bootsteps

from taskq_celery import settings as settings_module
from taskq_celery.scheduler import every_slot
from taskq_common.config import load_or_exit

settings = load_or_exit(settings_module.load)

QUEUE = "default"
HEARTBEAT_FILE = Path("/tmp/worker-heartbeat")
HEARTBEAT_EVERY_S = 5.0

app = Celery("taskq", broker=settings.redis_url, include=["taskq_celery.tasks"])
app.conf.update(
    # JSON only: a pickled message is code that runs on unpickling, so anyone able to write to
    # Redis could run code in the worker. kombu refuses any other content type.
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    result_accept_content=["json"],
    event_serializer="json",
    task_default_queue=QUEUE,
    # kombu's Redis transport, made to drop an unreadable queue item instead of exiting.
    broker_transport="taskq_celery.transport:Transport",
    # Effects live in Postgres; nobody reads task results, so none are stored.
    task_ignore_result=True,
    # Ack after the task ran, not when it was received: a worker killed mid-job leaves the
    # message unacknowledged and Redis hands it out again after the visibility timeout.
    task_acks_late=True,
    # A pool child that dies mid-job (OOM killer, segfault) retries the task through the normal
    # retry path, so max_retries still caps it and a job that always crashes its process ends
    # in the dead-letter store. task_reject_on_worker_lost would instead requeue it forever.
    task_retry_on_worker_lost=True,
    task_reject_on_worker_lost=False,
    # Take one message per free process and no more: messages wait in Redis, where another
    # worker can take them, instead of in a worker's memory, where a crash strands them.
    worker_prefetch_multiplier=1,
    worker_disable_prefetch=True,
    # The soft limit raises SoftTimeLimitExceeded in the task (which retries it); the hard limit
    # kills a task that ignores it, e.g. one stuck in a C call.
    task_soft_time_limit=settings.job_time_limit_s,
    task_time_limit=settings.hard_time_limit_s,
    broker_transport_options={
        # Longer than the hard limit, so a job still running is never handed to a second worker.
        "visibility_timeout": settings.visibility_timeout_s,
        # Scan for messages abandoned by a killed worker every RESTORE_SWEEP_S, not every 100 s.
        "unacked_restore_interval": settings_module.RESTORE_SWEEP_S,
        "unacked_restore_throttle": 1,
    },
    broker_connection_retry_on_startup=True,
    # Flower builds its views from task events.
    worker_send_task_events=True,
    task_send_sent_event=True,
    # Beat wakes at least this often, which keeps its heartbeat file fresh.
    beat_max_loop_interval=5,
    beat_schedule={
        "tick": {
            "task": "tick",
            "schedule": every_slot(settings.tick_interval_s),
            # A tick that cannot start within ten slots is stale: drop it rather than run it late.
            "options": {"expires": settings.tick_interval_s * 10},
        },
    },
)


class Heartbeat(bootsteps.StartStopStep):
    """Touches HEARTBEAT_FILE from the worker's own event loop, for a cheap liveness check.

    The timer runs in the main process, so the file stays fresh while every pool process is
    busy with a long job: the healthcheck never restarts a worker for being busy, only for a
    main loop that stopped turning. It costs no broker round-trip, unlike `celery inspect ping`.
    """

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_entry = None

    def start(self, worker):
        HEARTBEAT_FILE.touch()
        self.timer_entry = worker.timer.call_repeatedly(HEARTBEAT_EVERY_S, HEARTBEAT_FILE.touch)

    def stop(self, worker):
        if self.timer_entry is not None:
            self.timer_entry.cancel()
        HEARTBEAT_FILE.unlink(missing_ok=True)


app.steps["worker"].add(Heartbeat)
