"""The dead-letter store: jobs that failed their last attempt, kept until someone requeues them.

Celery has no dead-letter queue on Redis (a failed task's message is simply acknowledged), so
failures are written here, in the broker's Redis, which runs with the append-only file on.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

DEAD_LETTERS_KEY = "taskq:dead-letters"


def add(client: redis.Redis, *, job_id: str, task: str, args: list, kwargs: dict, error: str) -> None:
    entry = {
        "id": job_id,
        "key": kwargs.get("key"),
        "task": task,
        "args": list(args),
        "kwargs": kwargs,
        "error": error,
        "failed_at": time.time(),
    }
    client.hset(DEAD_LETTERS_KEY, job_id, json.dumps(entry))


def list_all(client: redis.Redis) -> list[dict[str, Any]]:
    entries = [json.loads(raw) for raw in client.hvals(DEAD_LETTERS_KEY)]
    return sorted(entries, key=lambda entry: entry["failed_at"])


def count(client: redis.Redis) -> int:
    return int(client.hlen(DEAD_LETTERS_KEY))


def requeue(client: redis.Redis, celery_app, job_ids: list[str] | None = None) -> int:
    """Send dead jobs again, as new messages with a fresh set of retries; None means all.

    A job is sent before its entry is removed: a crash in between leaves it both queued and
    listed, which at worst runs it twice, and its effect is idempotent.
    """
    if job_ids is None:
        job_ids = [entry["id"] for entry in list_all(client)]
    requeued = 0
    for job_id in job_ids:
        raw = client.hget(DEAD_LETTERS_KEY, job_id)
        if raw is None:
            raise KeyError(job_id)
        entry = json.loads(raw)
        celery_app.send_task(entry["task"], args=entry["args"], kwargs=entry["kwargs"], task_id=job_id)
        client.hdel(DEAD_LETTERS_KEY, job_id)
        requeued += 1
    return requeued
