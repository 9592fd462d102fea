"""What every process of the stack shares: settings, the queue's names, how jobs are encoded.

Arq encodes jobs with pickle unless told otherwise, on both sides: whoever can write to Redis
then runs code in the worker, before any function is looked up. Here jobs and results are
msgpack, on the worker (job_serializer/job_deserializer) and in every pool that enqueues.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import unquote, urlsplit

import msgpack
import redis
from arq.connections import RedisSettings

from taskq_arq import settings as settings_module
from taskq_common.config import load_or_exit

settings = load_or_exit(settings_module.load)

QUEUE = "arq:queue"  # Arq's default queue; the stack's only one ("default" in `taskq depth`)
# Jobs that failed their last try, kept until requeued: job id -> JSON (see dead_letters.py).
DEAD_LETTERS = "taskq:dead-letters"
# Each worker and scheduler process writes its own health key: this prefix and its hostname.
HEALTH_CHECK_KEY_PREFIX = "arq:health-check:"


def encode_exception(value: Any) -> Any:
    # A failed job's result is its exception: stored as text, so that its message survives.
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    raise TypeError(f"cannot serialize {type(value).__name__}")


def serialize(value: Any) -> bytes:
    return msgpack.packb(value, default=encode_exception)


def deserialize(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False)


def redis_settings() -> RedisSettings:
    # Built from the URL's parts: RedisSettings.from_dsn keeps a password percent-encoded.
    url = urlsplit(settings.redis_url)
    return RedisSettings(
        host=url.hostname or "redis",
        port=url.port or 6379,
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        database=int(url.path.strip("/") or 0),
        ssl=url.scheme == "rediss",
        conn_timeout=5,
    )


@functools.cache
def sync_client() -> redis.Redis:
    """A plain Redis client for the ops CLI and the dashboard, one connection pool per process
    (the dashboard reads on every page view)."""
    return redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
