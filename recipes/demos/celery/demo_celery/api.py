"""The demo HTTP API (shared by every demo), enqueueing with Celery."""

from __future__ import annotations

from demo_common.http_api import create_app
from kombu.exceptions import OperationalError

from demo_celery import tasks
from demo_celery.app import settings

TASKS = {"demo": tasks.demo, "send_report": tasks.send_report, "charge": tasks.charge}


def enqueue(task: str, kwargs: dict) -> str:
    # A short publish retry: a request waits about a second for a broker that is away, not more.
    return TASKS[task].apply_async(kwargs=kwargs, retry_policy={"max_retries": 2, "interval_max": 0.5}).id


app = create_app(
    "Task Queue Toolkit demo (Celery)",
    enqueue,
    (OperationalError,),
    settings.require_database_url(),
    settings.require_redis_url(),
)
