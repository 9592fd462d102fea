"""`taskq depth`, `taskq dlq` for RQ: counted in RQ's own keys, dead letters from its failed registries."""

from __future__ import annotations

import time
from datetime import UTC
from typing import TYPE_CHECKING, Any

from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.utils import utcparse

from taskq.deadletters import DeadLetter
from taskq.metrics import QueueMetrics, Snapshot, age_s, version_of
from taskq.presence import PROCESSES_KEY, SCHEDULES_KEY, outcomes_key

if TYPE_CHECKING:
    from taskq.rq import Jobs


def describe(job: Job, queue: str) -> DeadLetter:
    result = job.latest_result()
    error = result.exc_string.strip().splitlines()[-1] if result and result.exc_string else None
    try:
        task, args, kwargs = job.func_name.rsplit(".", 1)[-1], list(job.args or []), dict(job.kwargs or {})
    except Exception:  # noqa: BLE001 (a job that cannot be decoded is listed, not hidden)
        task, args, kwargs = None, [], {}
    identity = (job.meta or {}).get("taskq_idempotency")
    return DeadLetter(
        id=job.id,
        task=task,
        error=error,
        failed_at=job.ended_at.timestamp() if job.ended_at else None,
        args=args,
        kwargs=kwargs,
        queue=queue,
        scope=identity[0] if identity else None,
        key=identity[1] if identity else None,
    )


def _epoch(utc_text: str) -> float:
    moment = utcparse(utc_text)  # naive (UTC) in older RQ releases
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def operations(jobs: Jobs):
    from taskq.cli import Operations

    def registries() -> list[tuple[str, FailedJobRegistry]]:
        return [(name, jobs.queue(name).failed_job_registry) for name in jobs.queue_names]

    def depth() -> dict[str, Any]:
        # Raw counts: RQ's registry .count runs its cleanup (abandoned jobs' retries) as a side effect.
        client = jobs.connection
        with client.pipeline(transaction=False) as pipe:
            for name in jobs.queue_names:
                queue = jobs.queue(name)
                pipe.llen(queue.key)
                pipe.zcard(queue.started_job_registry.key)
                pipe.zcard(queue.failed_job_registry.key)
            counts = pipe.execute()
        return {
            "queues": {name: int(counts[3 * i]) for i, name in enumerate(jobs.queue_names)},
            # Running now; retries waiting for their interval are scheduled, not in progress.
            "in_progress": sum(int(counts[3 * i + 1]) for i in range(len(jobs.queue_names))),
            "dead": sum(int(counts[3 * i + 2]) for i in range(len(jobs.queue_names))),
        }

    def metrics() -> Snapshot:
        """Two pipelined round trips of O(1) commands per queue: the counts and the head job's id,
        then the head jobs' enqueue times (RQ sets it again when a retry's interval is over)."""
        client, names = jobs.connection, jobs.queue_names
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                queue = jobs.queue(name)
                pipe.llen(queue.key)
                pipe.zcard(queue.scheduled_job_registry.key)
                pipe.zcard(queue.started_job_registry.key)
                pipe.zcard(queue.failed_job_registry.key)
                pipe.lindex(queue.key, 0)  # RQ pushes on the right: the oldest is on the left
                # a started job's score is when its worker's lease on it ends: past, it is abandoned
                pipe.zcount(queue.started_job_registry.key, "-inf", time.time())
                pipe.hgetall(outcomes_key(name))
            pipe.hgetall(PROCESSES_KEY)
            pipe.hgetall(SCHEDULES_KEY)
            *counts, processes, schedules = pipe.execute()
        per = 7
        heads = [counts[per * i + 4] for i in range(len(names))]
        with client.pipeline(transaction=False) as pipe:
            for head in heads:
                if head is not None:
                    pipe.hget(jobs.job_class.key_for(head.decode()), "enqueued_at")
            enqueued = iter(pipe.execute() if any(h is not None for h in heads) else [])
        now = time.time()
        snapshot = Snapshot("RQ", version_of("rq")).add_presence(processes, schedules, now)
        for i, name in enumerate(names):
            raw = next(enqueued) if heads[i] is not None else None
            since = _epoch(raw.decode()) if raw else None
            snapshot.queues[name] = QueueMetrics(
                depth=int(counts[per * i]),
                delayed=int(counts[per * i + 1]),
                oldest_age_s=age_s(now, since) if counts[per * i] else 0.0,
                in_progress=int(counts[per * i + 2]),
                dead_letters=int(counts[per * i + 3]),
                stuck=int(counts[per * i + 5]),
            ).add_outcomes(counts[per * i + 6])
        return snapshot

    def dead_letters() -> list[DeadLetter]:
        letters = []
        for name, failed in registries():
            ids = failed.get_job_ids(cleanup=False)
            for job in Job.fetch_many(ids, connection=failed.connection, serializer=failed.serializer):
                if job is not None:
                    letters.append(describe(job, name))
        return sorted(letters, key=lambda letter: letter.failed_at or 0)

    def requeue(job_ids: list[str] | None) -> list[DeadLetter]:
        """Requeue with a fresh set of retries (RQ's own requeue leaves retries_left at 0)."""
        found = {letter.id: letter for letter in dead_letters()}
        chosen = list(found) if job_ids is None else job_ids
        for job_id in chosen:
            if job_id not in found:
                raise KeyError(job_id)
        for job_id in chosen:
            failed = jobs.queue(found[job_id].queue).failed_job_registry
            job = jobs.job_class.fetch(job_id, connection=failed.connection, serializer=failed.serializer)
            fresh = jobs.retry_policy()
            job.retries_left, job.retry_intervals = fresh.max, fresh.intervals
            job.save()
            failed.requeue(job)
        return [found[job_id] for job_id in chosen]

    def workers() -> list[dict[str, Any]]:
        from rq import Worker

        found = []
        for worker in Worker.all(connection=jobs.connection):
            seen = worker.last_heartbeat
            found.append(
                {
                    "worker": worker.name,
                    "last_seen": seen.timestamp() if seen else None,
                    "in_progress": 1 if worker.get_current_job_id() else 0,
                }
            )
        return found

    return Operations(
        library="RQ",
        depth=depth,
        dead_letters=dead_letters,
        requeue=requeue,
        workers=workers,
        settings=jobs.settings,
        metrics=metrics,
    )
