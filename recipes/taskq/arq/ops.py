"""`taskq depth`, `taskq dlq` for Arq: counted in Arq's keys; dead letters in `taskq:dead-letters`.

Requeue sends the job again under the same id with a fresh set of tries: in one Redis transaction
it leaves the dead letters, its kept result and try counter are deleted (Arq would otherwise refuse
the id, and count on from the old tries), and the job is queued as Arq queues one.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

import redis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix
from arq.jobs import serialize_job

from taskq.arq import HEALTH_CHECK_KEY_PREFIX, serialize
from taskq.deadletters import DEAD_LETTERS_KEY, DeadLetter, RedisDeadLetters
from taskq.settings import ARQ_HEALTH_CHECK_INTERVAL_S

if TYPE_CHECKING:
    from taskq.arq import ArqToolkit

# How long a requeued job may wait in the queue before Arq lets it expire (Arq's default: a day).
REQUEUED_JOB_EXPIRES_MS = 86_400_000


def display_name(queue_name: str) -> str:
    """Arq's default queue, `arq:queue`, shows as "default", like the other libraries' default."""
    return "default" if queue_name == "arq:queue" else queue_name


def operations(toolkit: ArqToolkit):
    from taskq.cli import Operations

    @functools.cache
    def client() -> redis.Redis:
        return redis.Redis.from_url(toolkit.redis_url_resolved, socket_timeout=10, socket_connect_timeout=5)

    def depth() -> dict[str, Any]:
        r = client()
        # A running job stays in the queue's sorted set, marked by its in-progress key.
        in_progress = sum(1 for _ in r.scan_iter(match=f"{in_progress_key_prefix}*", count=1000))
        due = int(r.zcount(toolkit.queue_name, "-inf", int(time.time() * 1000)))
        return {
            # Jobs due and waiting for a worker; not retries or cron runs waiting for their time.
            "queues": {display_name(toolkit.queue_name): max(0, due - in_progress)},
            "dead": RedisDeadLetters(r).count(),
            "in_progress": in_progress,
        }

    def requeue(job_ids: list[str] | None) -> list[DeadLetter]:
        r, store = client(), RedisDeadLetters(client())
        letters = store.all() if job_ids is None else [store.get(i) for i in job_ids]
        for job_id, letter in zip(job_ids or [letter.id for letter in letters], letters, strict=True):
            if letter is None:
                raise KeyError(job_id)
        return [letter for letter in letters if _requeue_one(r, letter, toolkit.queue_name)]

    def workers() -> list[dict[str, Any]]:
        """Processes whose health key is live (it lapses ARQ_HEALTH_CHECK_INTERVAL_S + 1 s after
        their last write), with the number of jobs each was running then."""
        r, now_ms, found = client(), time.time() * 1000, []
        for key in r.scan_iter(match=f"{HEALTH_CHECK_KEY_PREFIX}*", count=1000):
            report, ttl_ms = r.get(key), r.pttl(key)
            if report is None or ttl_ms < 0:
                continue
            # "Nov-24 10:00:00 j_complete=3 j_failed=0 j_retried=1 j_ongoing=2 queued=5"
            counts = dict(part.split("=", 1) for part in report.decode().split() if "=" in part)
            written_ms = now_ms - ((ARQ_HEALTH_CHECK_INTERVAL_S + 1) * 1000 - ttl_ms)
            found.append(
                {
                    "worker": key.decode().removeprefix(HEALTH_CHECK_KEY_PREFIX),
                    "last_seen": written_ms / 1000,
                    "in_progress": int(counts.get("j_ongoing", 0)),
                }
            )
        return sorted(found, key=lambda worker: worker["worker"])

    return Operations(
        library="Arq",
        depth=depth,
        dead_letters=lambda: RedisDeadLetters(client()).all(),
        requeue=requeue,
        workers=workers,
        settings=toolkit.settings,
    )


def _requeue_one(r: redis.Redis, letter: DeadLetter, default_queue: str) -> bool:
    queue = letter.queue or default_queue
    with r.pipeline() as pipe:
        try:
            pipe.watch(DEAD_LETTERS_KEY)
            if pipe.hget(DEAD_LETTERS_KEY, letter.id) is None:
                return False  # requeued meanwhile by someone else
            now_ms = int(time.time() * 1000)
            job = serialize_job(
                letter.task, tuple(letter.args), letter.kwargs, None, now_ms, serializer=serialize
            )
            pipe.multi()
            pipe.hdel(DEAD_LETTERS_KEY, letter.id)
            pipe.delete(result_key_prefix + letter.id, retry_key_prefix + letter.id)
            pipe.psetex(job_key_prefix + letter.id, REQUEUED_JOB_EXPIRES_MS, job)
            pipe.zadd(queue, {letter.id: now_ms})
            pipe.execute()
        except redis.WatchError:
            return False
    return True
