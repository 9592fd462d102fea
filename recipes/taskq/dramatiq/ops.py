"""`taskq depth`, `taskq dlq` for Dramatiq: counted in the Redis broker's keys, for every queue
the app declares. Dead letters are Dramatiq's own (`<queue>.XQ`, kept a year by the toolkit).

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

from taskq.deadletters import DeadLetter
from taskq.dramatiq.middleware import IDENTITY_OPTION
from taskq.settings import DramatiqSettings

# What a failed run leaves in a message's options; requeue removes them.
FAILURE_OPTIONS = ("retries", "traceback", "requeue_timestamp", "eta", "redis_message_id", IDENTITY_OPTION)


def keys(namespace: str, queue: str) -> dict[str, str]:
    """The Redis keys Dramatiq uses for a queue (see dramatiq/brokers/redis/dispatch.lua)."""
    prefix = f"{namespace}:{queue}"
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


def describe(queue: str, redis_id: str, data: bytes | None, died_at_ms: float) -> DeadLetter:
    message = decode(data)
    if message is None:
        return DeadLetter(
            id=redis_id,
            task=None,
            error="the message cannot be decoded",
            failed_at=died_at_ms / 1000,
            queue=queue,
        )
    traceback = (message.options.get("traceback") or "").strip().splitlines()
    identity = message.options.get(IDENTITY_OPTION)
    return DeadLetter(
        id=message.message_id,
        task=message.actor_name,
        error=traceback[-1] if traceback else "refused: no such actor",
        failed_at=died_at_ms / 1000,
        args=list(message.args),
        kwargs=dict(message.kwargs),
        queue=queue,
        scope=identity[0] if identity else None,
        key=identity[1] if identity else None,
    )


def operations(broker):
    from taskq.cli import Operations

    client: redis.Redis = broker.client
    namespace = broker.namespace

    def queue_names() -> list[str]:
        return sorted(broker.get_declared_queues())

    def in_progress_by_worker() -> dict[str, int]:
        """Messages each worker process has fetched and not yet acked, from its ack sets. Delayed
        retries held in memory (the `.DQ` ack sets) wait for their time: they are not counted."""
        counts: dict[str, int] = {}
        prefix = f"{namespace}:__acks__."
        for queue in queue_names():
            for key in client.scan_iter(match=f"{prefix}*.{queue}", count=1000):
                worker_id = key.decode()[len(prefix) : -len(queue) - 1]
                counts[worker_id] = counts.get(worker_id, 0) + int(client.scard(key))
        return counts

    def depth() -> dict[str, Any]:
        names = queue_names()
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                k = keys(namespace, name)
                pipe.llen(k["queue"])
                pipe.zcard(k["dead"])
            counts = pipe.execute()
        return {
            "queues": {name: int(counts[2 * i]) for i, name in enumerate(names)},
            "dead": sum(int(counts[2 * i + 1]) for i in range(len(names))),
            "in_progress": sum(in_progress_by_worker().values()),
        }

    def dead_entries(queue: str) -> list[tuple[str, bytes | None, float]]:
        k = keys(namespace, queue)
        dead = [(i.decode(), score) for i, score in client.zrange(k["dead"], 0, -1, withscores=True)]
        data = client.hmget(k["dead_messages"], [i for i, _ in dead]) if dead else []
        return [(i, d, score) for (i, score), d in zip(dead, data, strict=True)]

    def dead_letters() -> list[DeadLetter]:
        letters = [describe(q, *entry) for q in queue_names() for entry in dead_entries(q)]
        return sorted(letters, key=lambda letter: letter.failed_at or 0)

    def requeue(job_ids: list[str] | None) -> list[DeadLetter]:
        found: dict[str, tuple[DeadLetter, str, bytes | None]] = {}
        for queue in queue_names():
            for redis_id, data, died in dead_entries(queue):
                letter = describe(queue, redis_id, data, died)
                found[letter.id] = (letter, redis_id, data)
        chosen = list(found) if job_ids is None else job_ids
        for job_id in chosen:
            if job_id not in found:
                raise KeyError(job_id)
        done = []
        for job_id in chosen:
            letter, redis_id, data = found[job_id]
            if _requeue_one(client, keys(namespace, letter.queue), redis_id, data):
                done.append(letter)
        return done

    def workers() -> list[dict[str, Any]]:
        """Every broker process with a heartbeat (dead ones stay until maintenance drops them)."""
        in_progress = in_progress_by_worker()
        beats = client.zrange(f"{namespace}:__heartbeats__", 0, -1, withscores=True)
        return [
            {"worker": w.decode(), "last_seen": seen / 1000, "in_progress": in_progress.get(w.decode(), 0)}
            for w, seen in beats
        ]

    return Operations(
        library="Dramatiq",
        depth=depth,
        dead_letters=dead_letters,
        requeue=requeue,
        workers=workers,
        settings=getattr(broker, "settings", None) or DramatiqSettings.from_env(),
    )


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
