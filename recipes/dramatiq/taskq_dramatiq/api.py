"""The demo HTTP API (shared by every recipe), sending messages with Dramatiq."""

from __future__ import annotations

import redis

from taskq_common.http_api import create_app
from taskq_dramatiq import tasks
from taskq_dramatiq.broker import settings

ACTORS = {"demo": tasks.demo, "send_report": tasks.send_report}


def enqueue(task: str, kwargs: dict) -> str:
    return ACTORS[task].send(**kwargs).message_id


app = create_app("Task Queue Toolkit demo (Dramatiq)", enqueue, (redis.RedisError,), settings)
