"""The demo HTTP API (shared by every demo), enqueueing with RQ."""

from __future__ import annotations

import redis
from demo_common.http_api import create_app

from demo_rq import tasks

TASKS = {"demo": tasks.demo, "send_report": tasks.send_report, "charge": tasks.charge}


def enqueue(task: str, kwargs: dict) -> str:
    return tasks.jobs.enqueue(TASKS[task], **kwargs).id


app = create_app(
    "Task Queue Toolkit demo (RQ)",
    enqueue,
    (redis.RedisError,),
    tasks.jobs.settings.require_database_url(),
    tasks.jobs.settings.require_redis_url(),
)
