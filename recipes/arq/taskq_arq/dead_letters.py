"""The dead letters: jobs that failed their last try, in the Redis hash `taskq:dead-letters`.

Arq itself keeps a failed job's result for keep_result seconds (an hour) and then nothing: it
has no dead-letter queue. The worker (worker.TaskqWorker) writes each dead job here, with its
function, arguments, last error and time, and it stays until requeued.

Requeue sends the job again under the same id with a fresh set of tries: in one Redis
transaction it leaves the dead letters, its kept result and try counter are deleted (Arq would
otherwise refuse the id, and count on from the old tries), and the job is queued as Arq queues one.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from arq.constants import job_key_prefix, result_key_prefix, retry_key_prefix
from arq.jobs import serialize_job

from taskq_arq.queue import DEAD_LETTERS, QUEUE, serialize, sync_client

# How long a requeued job may wait in the queue before Arq lets it expire (Arq's default: a day).
REQUEUED_JOB_EXPIRES_MS = 86_400_000


def list_all() -> list[dict[str, Any]]:
    entries = [json.loads(raw) for raw in sync_client().hvals(DEAD_LETTERS)]
    return sorted(
        (
            {
                "id": e["id"],
                "key": e["kwargs"].get("key"),
                "task": e["function"],
                "error": e["error"],
                "failed_at": e["failed_at"],
            }
            for e in entries
        ),
        key=lambda entry: entry["failed_at"],
    )


def requeue(job_ids: list[str] | None = None) -> int:
    r = sync_client()
    chosen = [i.decode() for i in r.hkeys(DEAD_LETTERS)] if job_ids is None else job_ids
    missing = [job_id for job_id in chosen if not r.hexists(DEAD_LETTERS, job_id)]
    if missing:
        raise KeyError(missing[0])
    return sum(requeue_one(r, job_id) for job_id in chosen)


def requeue_one(r: redis.Redis, job_id: str) -> bool:
    with r.pipeline() as pipe:
        try:
            pipe.watch(DEAD_LETTERS)
            raw = pipe.hget(DEAD_LETTERS, job_id)
            if raw is None:
                return False  # requeued meanwhile by someone else
            entry = json.loads(raw)
            now_ms = int(time.time() * 1000)
            job = serialize_job(
                entry["function"], tuple(entry["args"]), entry["kwargs"], None, now_ms, serializer=serialize
            )
            pipe.multi()
            pipe.hdel(DEAD_LETTERS, job_id)
            pipe.delete(result_key_prefix + job_id, retry_key_prefix + job_id)
            pipe.psetex(job_key_prefix + job_id, REQUEUED_JOB_EXPIRES_MS, job)
            pipe.zadd(QUEUE, {job_id: now_ms})
            pipe.execute()
        except redis.WatchError:
            return False
    return True
