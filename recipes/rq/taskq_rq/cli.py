"""`taskq` for the RQ stack: the shared verbs (taskq_common.ops_cli), counted in RQ's keys."""

from __future__ import annotations

from typing import Any

from taskq_common.ops_cli import Operations
from taskq_common.ops_cli import main as run


def depth() -> dict[str, Any]:
    from taskq_rq.worker import QUEUE, default_queue  # (imported here: --help needs no broker)

    # Raw counts: RQ's registry .count runs its cleanup (abandoned jobs' retries) as a side effect.
    default = default_queue()
    redis = default.connection
    return {
        "queues": {QUEUE: int(redis.llen(default.key))},
        "dead": int(redis.zcard(default.failed_job_registry.key)),
        # Running now; retries waiting for their interval are scheduled, not in progress.
        "in_progress": int(redis.zcard(default.started_job_registry.key)),
    }


def dead_letters() -> list[dict[str, Any]]:
    from taskq_rq import dead_letters

    return dead_letters.list_all()


def requeue(job_ids: list[str] | None) -> int:
    from taskq_rq import dead_letters

    return dead_letters.requeue(job_ids)


def postgres_dsn() -> str:
    from taskq_rq.worker import settings

    return settings.postgres_dsn


def main(argv: list[str] | None = None) -> int:
    return run(Operations("RQ", depth, dead_letters, requeue, postgres_dsn), argv)
