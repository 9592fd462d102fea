"""`taskq` for the Celery stack: the shared verbs (taskq_common.ops_cli), counted in kombu's keys."""

from __future__ import annotations

from typing import Any

from taskq_common.ops_cli import Operations
from taskq_common.ops_cli import main as run

# kombu keeps a queue with priorities in one list per priority step, named
# "<queue>\x06\x16<step>"; messages without a priority go to the plain list.
PRIORITY_SEPARATOR = "\x06\x16"
# kombu's Redis transport: delivery tag -> message of every delivered, unacknowledged message.
UNACKED_KEY = "unacked"


def depth() -> dict[str, Any]:
    from taskq_celery import dead_letters  # (imported here: --help needs no broker)
    from taskq_celery.tasks import redis_client
    from taskq_celery.worker import QUEUE

    client = redis_client()
    names = [QUEUE] + [f"{QUEUE}{PRIORITY_SEPARATOR}{step}" for step in range(1, 10)]
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(name)
        queued = sum(pipe.execute())
    return {
        "queues": {QUEUE: queued},
        "dead": dead_letters.count(client),
        "in_progress": int(client.hlen(UNACKED_KEY)),
    }


def dead_letters() -> list[dict[str, Any]]:
    from taskq_celery import dead_letters
    from taskq_celery.tasks import redis_client

    return dead_letters.list_all(redis_client())


def requeue(job_ids: list[str] | None) -> int:
    from taskq_celery import dead_letters
    from taskq_celery.tasks import redis_client
    from taskq_celery.worker import app

    return dead_letters.requeue(redis_client(), app, job_ids)


def postgres_dsn() -> str:
    from taskq_celery.worker import settings

    return settings.postgres_dsn


def main(argv: list[str] | None = None) -> int:
    return run(Operations("Celery", depth, dead_letters, requeue, postgres_dsn), argv)
