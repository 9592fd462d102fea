"""The Redis broker, with three differences from a stock RedisBroker:

- Maintenance, which puts the messages of dead workers back in their queue, runs once per
  DRAMATIQ_MAINTENANCE_INTERVAL_S for each queue in each process, not on a random 0.1 % of broker
  calls (with one idle worker that was every ~8 minutes on average).
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

from dramatiq.brokers.redis import MAINTENANCE_COMMAND_BLACKLIST, _RedisConsumer
from dramatiq.brokers.redis import RedisBroker as DramatiqRedisBroker
from dramatiq.errors import DecodeError
from dramatiq.message import Message

from taskq.heartbeat import Heartbeat
from taskq.presence import Presence
from taskq.settings import DRAMATIQ_MAINTENANCE_INTERVAL_S

__all__ = ["ToolkitRedisBroker", "ToolkitRedisConsumer"]

log = logging.getLogger("taskq.dramatiq")


class ToolkitRedisConsumer(_RedisConsumer):
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


class ToolkitRedisBroker(DramatiqRedisBroker):
    """A RedisBroker with timed maintenance, a stop flag, and a heartbeat file.

    Every broker call (the consumers poll at least every DRAMATIQ_POLL_MS) refreshes the
    process's heartbeat in Redis; the file mirrors that, at most once a second, in the worker
    processes (where `heartbeat` is set): a stale file means a worker that is not talking to Redis.
    """

    heartbeat: Heartbeat | None = None
    # set in worker processes: announced with the heartbeat (taskq.presence)
    presence: Presence | None = None

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.stopping = threading.Event()
        self._calling = threading.local()  # the queue of the broker call under way, per thread
        self._next_maintenance: dict[str, float] = {}
        self._maintenance_lock = threading.Lock()

    @property
    def consumer_class(self):
        return ToolkitRedisConsumer

    def _dispatch(self, command):
        run = super()._dispatch(command)

        def dispatch(queue_name, *args):
            self._calling.queue_name = queue_name
            result = run(queue_name, *args)
            if self.heartbeat is not None:
                self.heartbeat.beat()
            if self.presence is not None:
                self.presence.announce(self.client)
            return result

        return dispatch

    def _should_do_maintenance(self, command: str) -> int:
        if command in MAINTENANCE_COMMAND_BLACKLIST:
            return 0
        queue_name, now = getattr(self._calling, "queue_name", None), time.monotonic()
        with self._maintenance_lock:
            if now < self._next_maintenance.get(queue_name, 0.0):
                return 0
            self._next_maintenance[queue_name] = now + DRAMATIQ_MAINTENANCE_INTERVAL_S
            return 1

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
