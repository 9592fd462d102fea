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
from arq.constants import job_key_prefix, result_key_prefix, retry_key_prefix
from arq.jobs import serialize_job

from taskq.arq import display_name, running_key, serialize
from taskq.deadletters import DEAD_LETTERS_KEY, DeadLetter, RedisDeadLetters
from taskq.metrics import QueueMetrics, Snapshot, age_s, version_of
from taskq.presence import PROCESSES_KEY, SCHEDULES_KEY, live_processes, outcomes_key
from taskq.settings import ARQ_IN_PROGRESS_MARGIN_S

if TYPE_CHECKING:
    from taskq.arq import ArqToolkit

# A running job's entry this much older than Arq's job timeout belongs to a worker that is gone.
STUCK_MARGIN_S = 5
# How long a requeued job may wait in the queue before Arq lets it expire (Arq's default: a day).
REQUEUED_JOB_EXPIRES_MS = 86_400_000


def operations(toolkit: ArqToolkit):
    from taskq.cli import Operations

    @functools.cache
    def client() -> redis.Redis:
        return redis.Redis.from_url(toolkit.redis_url_resolved, socket_timeout=10, socket_connect_timeout=5)

    def metrics() -> Snapshot:
        """Two pipelined round trips, O(log N) each: the queue's due and future jobs, the jobs
        running now (the worker's sorted set; an entry older than Arq's in-progress lifetime is a
        killed worker's job, which waits to run again), the live processes and schedule entries,
        the dead letters; then the oldest due job that is not running (a running job stays in
        Arq's queue), and which of the long-running entries are still queued (stuck)."""
        r, queue = client(), toolkit.queue_name
        now_ms = int(time.time() * 1000)
        lapsed_ms = (toolkit.settings.arq_job_timeout_s + ARQ_IN_PROGRESS_MARGIN_S) * 1000
        overdue_ms = (toolkit.settings.arq_job_timeout_s + STUCK_MARGIN_S) * 1000
        with r.pipeline(transaction=False) as pipe:
            pipe.zcount(queue, "-inf", now_ms)
            pipe.zcount(queue, f"({now_ms}", "+inf")
            pipe.zrangebyscore(running_key(queue), now_ms - lapsed_ms, "+inf")
            pipe.zrangebyscore(running_key(queue), "-inf", now_ms - overdue_ms)
            pipe.hlen(DEAD_LETTERS_KEY)
            pipe.hgetall(PROCESSES_KEY)
            pipe.hgetall(SCHEDULES_KEY)
            pipe.hgetall(outcomes_key(display_name(queue)))
            due, later, running, overdue, dead, processes, schedules, outcomes = pipe.execute()
        running = set(running)
        with r.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(queue, "-inf", now_ms, start=0, num=len(running) + 1, withscores=True)
            for job_id in overdue:
                pipe.zscore(queue, job_id)
            first_due, *overdue_scores = pipe.execute()
        waiting_since = next((score / 1000 for job_id, score in first_due if job_id not in running), None)
        depth = max(0, int(due) - len(running))
        snapshot = Snapshot("Arq", version_of("arq")).add_presence(processes, schedules, now_ms / 1000)
        snapshot.queues[display_name(queue)] = QueueMetrics(
            depth=depth,
            delayed=int(later),
            oldest_age_s=age_s(now_ms / 1000, waiting_since) if depth else 0.0,
            in_progress=len(running),
            dead_letters=int(dead),
            # started longer ago than a job may run and still queued: its worker is gone
            stuck=sum(1 for score in overdue_scores if score is not None),
        ).add_outcomes(outcomes)
        return snapshot

    def depth() -> dict[str, Any]:
        queue = metrics().queues[display_name(toolkit.queue_name)]
        return {
            # Jobs due and waiting for a worker; not retries or cron runs waiting for their time.
            "queues": {display_name(toolkit.queue_name): queue.depth},
            "dead": queue.dead_letters,
            "in_progress": queue.in_progress,
        }

    def requeue(job_ids: list[str] | None) -> list[DeadLetter]:
        r, store = client(), RedisDeadLetters(client())
        letters = store.all() if job_ids is None else [store.get(i) for i in job_ids]
        for job_id, letter in zip(job_ids or [letter.id for letter in letters], letters, strict=True):
            if letter is None:
                raise KeyError(job_id)
        return [letter for letter in letters if _requeue_one(r, letter, toolkit.queue_name)]

    def workers() -> list[dict[str, Any]]:
        """The live worker processes (taskq.presence), with the jobs each was running when it last
        wrote (every ARQ_HEALTH_CHECK_INTERVAL_S)."""
        found = live_processes(client().hgetall(PROCESSES_KEY), time.time())
        return sorted(
            (
                {"worker": p["member"], "last_seen": p["seen"], "in_progress": int(p.get("busy") or 0)}
                for p in found
                if p.get("role") == "worker"
            ),
            key=lambda worker: worker["worker"],
        )

    return Operations(
        library="Arq",
        depth=depth,
        dead_letters=lambda: RedisDeadLetters(client()).all(),
        requeue=requeue,
        workers=workers,
        settings=toolkit.settings,
        metrics=metrics,
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
