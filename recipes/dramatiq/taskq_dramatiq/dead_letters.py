"""The dead letters: Dramatiq's dead-letter queue on Redis, and the requeue Dramatiq lacks.

A message that fails its last attempt is moved to `dramatiq:default.XQ` (a sorted set of Redis
message ids, by time of death) and `dramatiq:default.XQ.msgs` (id -> the message, as it was on
its last attempt, with the traceback in its options). This recipe keeps them a year.

Requeue sends the message itself back, not a new one built from its arguments: same message id,
actor, arguments and options, but with its retry count and traceback cleared so that it gets a
fresh set of attempts. The move is one Redis transaction: a dead letter is never both requeued
and still dead, nor lost between the two.
"""

from __future__ import annotations

import uuid
from typing import Any

import redis
from dramatiq.message import Message

from taskq_dramatiq.broker import QUEUE, broker

# What a failed run leaves in a message's options; requeue removes them.
FAILURE_OPTIONS = ("retries", "traceback", "requeue_timestamp", "eta", "redis_message_id")


def keys(queue: str = QUEUE) -> dict[str, str]:
    """The Redis keys Dramatiq uses for a queue (see dramatiq/brokers/redis/dispatch.lua)."""
    prefix = f"{broker.namespace}:{queue}"
    return {
        "queue": prefix,
        "messages": f"{prefix}.msgs",
        "dead": f"{prefix}.XQ",
        "dead_messages": f"{prefix}.XQ.msgs",
    }


def decode(data: bytes | None) -> Message | None:
    try:
        return Message.decode(data)
    except Exception:  # noqa: BLE001 (a dead letter that cannot be decoded is listed, not hidden)
        return None


def describe(redis_id: str, data: bytes | None, died_at_ms: float) -> dict[str, Any]:
    message = decode(data)
    if message is None:
        return {
            "id": redis_id,
            "key": None,
            "task": None,
            "error": "the message cannot be decoded",
            "failed_at": died_at_ms / 1000,
        }
    traceback = (message.options.get("traceback") or "").strip().splitlines()
    return {
        "id": message.message_id,
        "key": message.kwargs.get("key"),
        "task": message.actor_name,
        "error": traceback[-1] if traceback else "refused: no such actor",
        "failed_at": died_at_ms / 1000,
    }


def dead_entries(client: redis.Redis) -> list[tuple[str, bytes | None, float]]:
    """(Redis id, message data, time of death in ms) of every dead letter, oldest first."""
    k = keys()
    dead = [(i.decode(), score) for i, score in client.zrange(k["dead"], 0, -1, withscores=True)]
    data = client.hmget(k["dead_messages"], [i for i, _ in dead]) if dead else []
    return [(i, d, score) for (i, score), d in zip(dead, data, strict=True)]


def list_all() -> list[dict[str, Any]]:
    return [describe(*entry) for entry in dead_entries(broker.client)]


def requeue(job_ids: list[str] | None = None) -> int:
    """Requeue the dead letters with these message ids (every one when None)."""
    client, k = broker.client, keys()
    by_job_id = {describe(*entry)["id"]: entry for entry in dead_entries(client)}
    chosen = list(by_job_id) if job_ids is None else job_ids
    for job_id in chosen:
        if job_id not in by_job_id:
            raise KeyError(job_id)
    requeued = 0
    for job_id in chosen:
        redis_id, data, _ = by_job_id[job_id]
        if _requeue_one(client, k, redis_id, data):
            requeued += 1
    return requeued


def _requeue_one(client: redis.Redis, k: dict[str, str], redis_id: str, data: bytes | None) -> bool:
    message = decode(data)
    if message is not None:
        options = {name: value for name, value in message.options.items() if name not in FAILURE_OPTIONS}
        new_id = str(uuid.uuid4())
        data = Message(**{**message.asdict(), "options": {**options, "redis_message_id": new_id}}).encode()
    else:
        new_id = redis_id  # sent back as it was: it dead-letters again, visibly
    with client.pipeline() as pipe:
        try:
            pipe.watch(k["dead_messages"])
            if not pipe.hexists(k["dead_messages"], redis_id):
                return False  # requeued meanwhile by someone else
            pipe.multi()
            pipe.zrem(k["dead"], redis_id)
            pipe.hdel(k["dead_messages"], redis_id)
            # What the broker's enqueue does (dispatch.lua): the message by id, the id in the list.
            pipe.hset(k["messages"], new_id, data)
            pipe.rpush(k["queue"], new_id)
            pipe.execute()
        except redis.WatchError:
            return False
    return True
