"""The demo HTTP API (shared by every recipe), enqueueing with Arq from the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq.connections import ArqRedis, create_pool
from redis.exceptions import RedisError

from taskq_arq.queue import QUEUE, deserialize, redis_settings, serialize, settings
from taskq_common.http_api import create_app

arq: ArqRedis | None = None


@asynccontextmanager
async def arq_pool() -> AsyncIterator[None]:
    global arq
    arq = await create_pool(
        redis_settings(), job_serializer=serialize, job_deserializer=deserialize, default_queue_name=QUEUE
    )
    try:
        yield
    finally:
        await arq.aclose()


async def enqueue(task: str, kwargs: dict) -> str:
    job = await arq.enqueue_job(task, **kwargs)
    return job.job_id


app = create_app(
    "Task Queue Toolkit demo (Arq)", enqueue, (RedisError, OSError), settings, resources=arq_pool
)
