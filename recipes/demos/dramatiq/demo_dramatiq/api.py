"""The demo HTTP API (shared by every demo), sending messages with Dramatiq."""

from __future__ import annotations

import redis
from demo_common.http_api import create_app

from demo_dramatiq import tasks
from demo_dramatiq.broker import broker

ACTORS = {"demo": tasks.demo, "send_report": tasks.send_report, "charge": tasks.charge}


def enqueue(task: str, kwargs: dict) -> str:
    return ACTORS[task].send(**kwargs).message_id


app = create_app(
    "Task Queue Toolkit demo (Dramatiq)",
    enqueue,
    (redis.RedisError,),
    broker.settings.require_database_url(),
    broker.settings.require_redis_url(),
)
