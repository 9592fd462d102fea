"""`taskq` for the Arq stack: the shared verbs (taskq_common.ops_cli), counted in Arq's keys."""

from __future__ import annotations

import time
from typing import Any

from taskq_common.ops_cli import Operations
from taskq_common.ops_cli import main as run


def depth() -> dict[str, Any]:
    from arq.constants import in_progress_key_prefix

    from taskq_arq.queue import DEAD_LETTERS, QUEUE, sync_client

    r = sync_client()
    # A running job stays in the queue's sorted set, marked by its in-progress key.
    in_progress = sum(1 for _ in r.scan_iter(match=f"{in_progress_key_prefix}*", count=1000))
    due = int(r.zcount(QUEUE, "-inf", int(time.time() * 1000)))
    return {
        # Jobs due and waiting for a worker; not retries or cron runs waiting for their time.
        "queues": {"default": max(0, due - in_progress)},
        "dead": int(r.hlen(DEAD_LETTERS)),
        "in_progress": in_progress,
    }


def dead_letters() -> list[dict[str, Any]]:
    from taskq_arq import dead_letters

    return dead_letters.list_all()


def requeue(job_ids: list[str] | None) -> int:
    from taskq_arq import dead_letters

    return dead_letters.requeue(job_ids)


def postgres_dsn() -> str:
    from taskq_arq.queue import settings

    return settings.postgres_dsn


def operations() -> Operations:
    return Operations("Arq", depth, dead_letters, requeue, postgres_dsn)


def main(argv: list[str] | None = None) -> int:
    return run(operations(), argv)
