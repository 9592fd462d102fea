"""`taskq` for the Dramatiq stack: the shared verbs (taskq_common.ops_cli), counted in Dramatiq's keys."""

from __future__ import annotations

from typing import Any

from taskq_common.ops_cli import Operations
from taskq_common.ops_cli import main as run


def in_progress_by_worker() -> dict[str, int]:
    """Messages each worker process has fetched and not yet acked, from its ack set. Delayed
    retries held in memory (the `.DQ` ack sets) wait for their time: they are not counted."""
    from taskq_dramatiq.broker import QUEUE, broker

    counts: dict[str, int] = {}
    prefix = f"{broker.namespace}:__acks__."
    for key in broker.client.scan_iter(match=f"{prefix}*.{QUEUE}", count=1000):
        worker_id = key.decode()[len(prefix) : -len(QUEUE) - 1]
        counts[worker_id] = int(broker.client.scard(key))
    return counts


def depth() -> dict[str, Any]:
    from taskq_dramatiq import dead_letters
    from taskq_dramatiq.broker import QUEUE, broker

    k = dead_letters.keys()
    return {
        "queues": {QUEUE: int(broker.client.llen(k["queue"]))},
        "dead": int(broker.client.zcard(k["dead"])),
        "in_progress": sum(in_progress_by_worker().values()),
    }


def dead_letters() -> list[dict[str, Any]]:
    from taskq_dramatiq import dead_letters

    return dead_letters.list_all()


def requeue(job_ids: list[str] | None) -> int:
    from taskq_dramatiq import dead_letters

    return dead_letters.requeue(job_ids)


def postgres_dsn() -> str:
    from taskq_dramatiq.broker import settings

    return settings.postgres_dsn


def operations() -> Operations:
    return Operations("Dramatiq", depth, dead_letters, requeue, postgres_dsn)


def main(argv: list[str] | None = None) -> int:
    return run(operations(), argv)
