"""`taskq depth`, `taskq dlq` for Dramatiq: counted in the Redis broker's keys, for every queue
the app declares. Dead letters are Dramatiq's own (`<queue>.XQ`, kept a year by the toolkit).

Requeue sends the message itself back, not a new one built from its arguments: same message id,
actor, arguments and options, but with its retry count and traceback cleared so that it gets a
fresh set of attempts. The move is one Redis transaction: a dead letter is never both requeued
and still dead, nor lost between the two.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis
from dramatiq.message import Message

from taskq.deadletters import DeadLetter
from taskq.dramatiq.middleware import IDENTITY_OPTION
from taskq.metrics import QueueMetrics, Snapshot, age_s, version_of
from taskq.presence import PROCESSES_KEY, SCHEDULES_KEY, outcomes_key
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
        # messages with an ETA wait here until a worker fetches them and holds them until their time
        "delayed": f"{prefix}.DQ",
    }


def batched(answers: list, size: int) -> list[list]:
    """A pipeline's answers, cut into the equal groups it asked for (one group per queue)."""
    return [answers[i : i + size] for i in range(0, len(answers), size)]


def acks_key(namespace: str, worker_id: str, queue: str) -> str:
    """The set of messages a worker process fetched from a queue and has not acked yet."""
    return f"{namespace}:__acks__.{worker_id}.{queue}"


def enqueued_at(data: bytes | None) -> float | None:
    """When a message became due: its enqueue time, or its ETA if later (a retry keeps the first
    enqueue time and gets an ETA)."""
    try:
        message = json.loads(data) if data else None
        options = message.get("options") or {}
        times = [t for t in (message.get("message_timestamp"), options.get("eta")) if t is not None]
        return max(times) / 1000 if times else None
    except (ValueError, AttributeError, TypeError):
        return None


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

    def worker_ids() -> list[str]:
        """Every broker process with a heartbeat (dead ones stay until maintenance drops them and
        requeues what they held)."""
        return [w.decode() for w in client.zrange(f"{namespace}:__heartbeats__", 0, -1)]

    def in_progress_by_worker() -> dict[str, int]:
        """Messages each worker process has fetched and not yet acked, from its ack sets. Delayed
        retries held in memory (the `.DQ` ack sets) wait for their time: they are not counted."""
        workers, names = worker_ids(), queue_names()
        with client.pipeline(transaction=False) as pipe:
            for worker_id in workers:
                for queue in names:
                    pipe.scard(acks_key(namespace, worker_id, queue))
            counts = iter(pipe.execute())
        return {worker_id: sum(int(next(counts)) for _ in names) for worker_id in workers}

    def metrics() -> Snapshot:
        """Two pipelined round trips: per queue its length, dead letters, waiting ETAs, head
        message id and outcomes, and the heartbeat set's members; then, per queue, what each live
        process holds (running, or delayed in memory) and the head message's data. O(1) per queue
        and process: the keyspace is never scanned."""
        names = queue_names()
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                k = keys(namespace, name)
                pipe.llen(k["queue"])
                pipe.zcard(k["dead"])
                pipe.llen(k["delayed"])
                pipe.lindex(k["queue"], 0)  # pushed on the right: the oldest is on the left
                pipe.hgetall(outcomes_key(name))
            pipe.zrange(f"{namespace}:__heartbeats__", 0, -1, withscores=True)
            pipe.hgetall(PROCESSES_KEY)
            pipe.hgetall(SCHEDULES_KEY)
            *first, beats, processes, schedules = pipe.execute()
        reads = ("length", "dead", "delayed", "head", "outcomes")  # per queue, in the order asked
        counted = {
            name: dict(zip(reads, answers, strict=True))
            for name, answers in zip(names, batched(first, len(reads)), strict=True)
        }
        now = time.time()
        workers = [w.decode() for w, _ in beats]
        # A process whose heartbeat is older than the broker's timeout is gone: what it holds is
        # stuck until another process's maintenance puts it back in its queue.
        gone = {w.decode() for w, seen in beats if seen < now * 1000 - broker.heartbeat_timeout}
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                for worker_id in workers:
                    pipe.scard(acks_key(namespace, worker_id, name))
                    pipe.scard(acks_key(namespace, worker_id, f"{name}.DQ"))
                if head := counted[name]["head"]:
                    pipe.hget(keys(namespace, name)["messages"], head.decode())
                else:
                    pipe.echo("")  # keeps one answer per queue in place
            second = pipe.execute()
        snapshot = Snapshot("Dramatiq", version_of("dramatiq")).add_presence(processes, schedules, now)
        for name, held in zip(names, batched(second, 2 * len(workers) + 1), strict=True):
            queue = counted[name]
            *per_worker, head_data = held
            running = dict(zip(workers, per_worker[0::2], strict=True))
            delayed_in_memory = per_worker[1::2]
            snapshot.queues[name] = QueueMetrics(
                depth=int(queue["length"]),
                delayed=int(queue["delayed"]) + sum(int(n) for n in delayed_in_memory),
                oldest_age_s=age_s(now, enqueued_at(head_data or None)) if queue["length"] else 0.0,
                in_progress=sum(int(n) for n in running.values()),
                dead_letters=int(queue["dead"]),
                stuck=sum(int(n) for w, n in running.items() if w in gone),
            ).add_outcomes(queue["outcomes"])
        return snapshot

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
        beats = client.zrange(f"{namespace}:__heartbeats__", 0, -1, withscores=True)  # O(processes)
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
        metrics=metrics,
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
