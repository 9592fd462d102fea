"""The dead letters: RQ's FailedJobRegistry, where jobs go once their retries are spent.

RQ keeps a failed job for its failure_ttl (set to a year in tasks.enqueue). Requeueing a job
as it stands would give it no retries (it spent them): requeue resets them first, so that a
requeued job gets a fresh set of attempts, as the contract says.
"""

from __future__ import annotations

from typing import Any

from rq.job import Job
from rq.registry import FailedJobRegistry

from taskq_rq.settings import MAX_RETRIES
from taskq_rq.tasks import retry_policy
from taskq_rq.worker import default_queue


def registry() -> FailedJobRegistry:
    return default_queue().failed_job_registry


def describe(job: Job) -> dict[str, Any]:
    result = job.latest_result()
    error = result.exc_string.strip().splitlines()[-1] if result and result.exc_string else None
    try:
        task = job.func_name.rsplit(".", 1)[-1]
        key = (job.kwargs or {}).get("key")
    except Exception:  # noqa: BLE001 (a job that cannot be decoded is listed, not hidden)
        task, key = None, None
    return {
        "id": job.id,
        "key": key,
        "task": task,
        "error": error,
        "failed_at": job.ended_at.timestamp() if job.ended_at else None,
    }


def list_all() -> list[dict[str, Any]]:
    failed = registry()
    job_ids = failed.get_job_ids(cleanup=False)
    jobs = Job.fetch_many(job_ids, connection=failed.connection, serializer=failed.serializer)
    return sorted((describe(job) for job in jobs if job), key=lambda entry: entry["failed_at"] or 0)


def requeue(job_ids: list[str] | None = None) -> int:
    failed = registry()
    if job_ids is None:
        job_ids = failed.get_job_ids(cleanup=False)
    requeued = 0
    for job_id in job_ids:
        if job_id not in failed:
            raise KeyError(job_id)
        job = failed.job_class.fetch(job_id, connection=failed.connection, serializer=failed.serializer)
        fresh = retry_policy()
        job.retries_left, job.retry_intervals = MAX_RETRIES, fresh.intervals
        job.save()
        failed.requeue(job)
        requeued += 1
    return requeued
