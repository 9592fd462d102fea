"""The demo HTTP API (shared by every demo), enqueueing with Arq from the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq.connections import ArqRedis
from demo_common.http_api import create_app
from redis.exceptions import RedisError

import taskq.arq
from demo_arq.worker import settings

arq: ArqRedis | None = None


@asynccontextmanager
async def arq_pool() -> AsyncIterator[None]:
    global arq
    arq = await taskq.arq.create_pool(settings.require_redis_url())
    try:
        yield
    finally:
        await arq.aclose()


async def enqueue(task: str, kwargs: dict) -> str:
    job = await arq.enqueue_job(task, **kwargs)
    return job.job_id


app = create_app(
    "Task Queue Toolkit demo (Arq)",
    enqueue,
    (RedisError, OSError),
    settings.require_database_url(),
    settings.require_redis_url(),
    resources=arq_pool,
)
