"""The demo's Celery app: its own configuration, then `taskq.celery.setup(app)`, which applies the
toolkit's production settings on top (JSON only, acks late, no prefetch, time limits and the
visibility timeout derived from JOB_TIME_LIMIT_S, dead letters, heartbeat, the slot scheduler)."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

import taskq.celery
from taskq.settings import CelerySettings

settings = CelerySettings.from_env()
TICK_INTERVAL_S = int(os.environ.get("TICK_INTERVAL_S", "60"))

app = Celery("demo", broker=settings.require_redis_url(), include=["demo_celery.tasks"])
app.conf.update(
    task_default_queue="default",
    # Effects live in Postgres; nobody reads task results, so none are stored.
    task_ignore_result=True,
    # Flower builds its views from task events.
    worker_send_task_events=True,
    task_send_sent_event=True,
    beat_schedule={
        "tick": {
            "task": "tick",
            "schedule": TICK_INTERVAL_S,
            # The slot scheduler passes the slot it fires for; a tick that cannot start within ten
            # slots is stale: dropped rather than run late.
            "options": {"taskq_slot_kwarg": "slot", "expires": TICK_INTERVAL_S * 10},
        },
        # A periodic task as apps write them: a crontab, and no slot argument.
        "digest": {"task": "digest", "schedule": crontab(minute="*")},
    },
)
toolkit = taskq.celery.setup(app, settings=settings)
