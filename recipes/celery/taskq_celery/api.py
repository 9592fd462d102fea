"""The demo HTTP API (shared by every recipe), enqueueing with Celery."""

from __future__ import annotations

from kombu.exceptions import OperationalError

from taskq_celery import tasks
from taskq_celery.worker import settings
from taskq_common.http_api import create_app

TASKS = {"demo": tasks.demo, "send_report": tasks.send_report}


def enqueue(task: str, kwargs: dict) -> str:
    # A short publish retry: a request waits about a second for a broker that is away, not more.
    return TASKS[task].apply_async(kwargs=kwargs, retry_policy={"max_retries": 2, "interval_max": 0.5}).id


app = create_app("Task Queue Toolkit demo (Celery)", enqueue, (OperationalError,), settings)
