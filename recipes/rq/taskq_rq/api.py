"""The demo HTTP API (shared by every recipe), enqueueing with RQ."""

from __future__ import annotations

import redis

from taskq_common.http_api import create_app
from taskq_rq import tasks
from taskq_rq.worker import settings

TASKS = {"demo": tasks.demo, "send_report": tasks.send_report}


def enqueue(task: str, kwargs: dict) -> str:
    return tasks.enqueue(TASKS[task], **kwargs).id


app = create_app("Task Queue Toolkit demo (RQ)", enqueue, (redis.RedisError,), settings)
