"""The Redis broker, and the middleware every process that talks to it uses.

Importing this module makes the broker Dramatiq's global one, so it comes before the actors.
Three things differ from a stock RedisBroker:

- Maintenance, which puts the messages of dead workers back in their queue, runs once per
  MAINTENANCE_INTERVAL_S for each queue in each process, not on a random 0.1 % of broker calls.
- A message that cannot be decoded is dead-lettered. Stock Dramatiq raises out of the consumer,
  which restarts three seconds later having forgotten the rest of its prefetched batch: those
  messages then wait, unacked, until the worker process dies.
- A worker process told to stop (`stopping`, set by its SIGTERM handler) takes no new job.
  Stock Dramatiq notices SIGTERM up to a second later (its worker process checks a flag once a
  second), and until then its idle threads start whatever the consumers fetch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import dramatiq
import redis
from dramatiq.brokers.redis import MAINTENANCE_COMMAND_BLACKLIST, RedisBroker, _RedisConsumer
from dramatiq.errors import DecodeError
from dramatiq.message import Message
from dramatiq.middleware import (
    AgeLimit,
    CurrentMessage,
    Middleware,
    Retries,
    ShutdownNotifications,
    SkipMessage,
    TimeLimit,
)

from taskq_common.config import load_or_exit
from taskq_dramatiq import settings as settings_module

settings = load_or_exit(settings_module.load)

QUEUE = "default"
log = logging.getLogger(__name__)


class TaskqRedisConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, dead-lettering what it cannot read instead of crashing, and
    fetching nothing once its process is stopping.

    Unreadable comes in two kinds, both only ever written around Dramatiq's enqueue: data that
    does not decode to a message, and a message without the Redis id it would be acked by.
    """

    def __next__(self):
        if self.broker.stopping.is_set() and not self.message_cache:
            # Fetching zero messages still refreshes this process's heartbeat, which must stay
            # fresh while the running jobs finish, or another process would run them again.
            self.broker.do_fetch(self.queue_name, 0)
            time.sleep(self.timeout / 1000)
            return None
        try:
            message = super().__next__()
        except DecodeError as error:
            unreadable = error.data
            self.dead_letter(lambda data: data == unreadable, "it cannot be decoded")
            return None
        if message is not None and "redis_message_id" not in message.options:
            self.queued_message_ids.discard(message.message_id)
            self.dead_letter(lambda data: message_id_of(data) == message.message_id, "it has no Redis id")
            return None
        return message

    def dead_letter(self, matches: Callable[[bytes], bool], why: str) -> None:
        redis_message_id = self.broker.fetched_message_id(self.queue_name, matches)
        log.error("dead-lettering message %s from %r: %s", redis_message_id, self.queue_name, why)
        if redis_message_id is not None:
            self.broker.do_nack(self.queue_name, redis_message_id)


def message_id_of(data: bytes | None) -> str | None:
    try:
        return Message.decode(data).message_id
    except DecodeError:
        return None


class TaskqRedisBroker(RedisBroker):
    """A RedisBroker with timed maintenance, and a heartbeat file for the container's healthcheck.

    Every broker call (the consumers poll at least every WORKER_POLL_MS) refreshes the process's
    heartbeat in Redis; the file mirrors that, at most once a second, in the worker processes
    that set `heartbeat_file`: a stale file means a worker that is not talking to Redis.
    """

    heartbeat_file: Path | None = None

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.stopping = threading.Event()
        self._calling = threading.local()  # the queue of the broker call under way, per thread
        self._next_maintenance: dict[str, float] = {}
        self._maintenance_lock = threading.Lock()
        self._next_heartbeat_touch = 0.0

    @property
    def consumer_class(self):
        return TaskqRedisConsumer

    def _dispatch(self, command):
        run = super()._dispatch(command)

        def dispatch(queue_name, *args):
            self._calling.queue_name = queue_name
            result = run(queue_name, *args)
            self._touch_heartbeat_file()
            return result

        return dispatch

    def _should_do_maintenance(self, command: str) -> int:
        if command in MAINTENANCE_COMMAND_BLACKLIST:
            return 0
        queue_name, now = getattr(self._calling, "queue_name", None), time.monotonic()
        with self._maintenance_lock:
            if now < self._next_maintenance.get(queue_name, 0.0):
                return 0
            self._next_maintenance[queue_name] = now + settings_module.MAINTENANCE_INTERVAL_S
            return 1

    def _touch_heartbeat_file(self) -> None:
        now = time.monotonic()
        if self.heartbeat_file is not None and now >= self._next_heartbeat_touch:
            self._next_heartbeat_touch = now + 1
            self.heartbeat_file.touch()

    def fetched_message_id(self, queue_name: str, matches: Callable[[bytes], bool]) -> str | None:
        """The Redis id of a message this process fetched from queue_name and has not acked,
        whose stored data matches (the consumer is handed the data only, not the id)."""
        acks = f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}"
        ids = sorted(self.client.smembers(acks))
        if not ids:
            return None
        stored = self.client.hmget(f"{self.namespace}:{queue_name}.msgs", ids)
        return next(
            (i.decode() for i, d in zip(ids, stored, strict=True) if d is not None and matches(d)), None
        )


class PutBackWhenStopping(Middleware):
    """A message that reaches a worker thread after its process was told to stop goes back to
    its queue, untouched, instead of starting: a stopping worker only finishes what it runs.

    Such messages were fetched before the signal (prefetched while every thread was busy). The
    requeue takes the message out of this process's unacked set, so the ack that Dramatiq sends
    after SkipMessage finds nothing to delete and the message stays queued.
    """

    def before_process_message(self, broker: TaskqRedisBroker, message) -> None:
        if broker.stopping.is_set():
            broker.do_requeue(message.queue_name, message.options["redis_message_id"])
            raise SkipMessage(f"{message.message_id} put back in {message.queue_name!r}: stopping")


def redis_client() -> redis.Redis:
    # Every broker call is a short Lua script (the consumers poll; nothing blocks), so a read
    # timeout only ever fires on a dead connection.
    return redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=5, socket_timeout=10, health_check_interval=30
    )


broker = TaskqRedisBroker(
    client=redis_client(),
    heartbeat_timeout=settings.heartbeat_timeout_s * 1000,
    dead_message_ttl=settings_module.DEAD_MESSAGE_TTL_S * 1000,
    # Dramatiq's defaults, less Callbacks and Pipelines (the recipe uses neither, and they let a
    # message name the next actor to run), plus CurrentMessage (the actors read their id).
    middleware=[
        AgeLimit(),
        TimeLimit(time_limit=settings.time_limit_ms),
        ShutdownNotifications(),
        Retries(max_retries=settings_module.MAX_RETRIES, min_backoff=settings.min_backoff_ms),
        CurrentMessage(),
    ],
)
dramatiq.set_broker(broker)
