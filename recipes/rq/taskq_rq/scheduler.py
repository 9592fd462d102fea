"""The periodic `tick`, safe to run twice: each slot is enqueued once, however many schedulers run.

`rq cron` has no lock: two of them enqueue every job twice, and interval jobs fire on every
restart. This loop wakes at each wall-clock multiple of TICK_INTERVAL_S, claims the slot
(`floor(now / interval)`) in Redis with SET NX, and enqueues `tick(slot)` only if the claim was
its own. Both schedulers stay live, and a restarted one cannot fire a slot that already ran.
"""

from __future__ import annotations

import logging
import math
import signal
import socket
import threading
import time
from pathlib import Path

import redis

from taskq_rq import tasks
from taskq_rq.worker import connection, settings

HEARTBEAT_FILE = Path("/tmp/beat-heartbeat")
log = logging.getLogger("taskq_rq.scheduler")


def slot_of(timestamp: float, interval: float) -> int:
    return math.floor(timestamp / interval)


def fire_once(client: redis.Redis, slot: int, interval: int) -> bool:
    # Kept for ten slots: long enough that no scheduler, however late, enqueues it again.
    if not client.set(f"taskq:beat:tick:{slot}", socket.gethostname(), nx=True, ex=interval * 10):
        return False
    tasks.enqueue(tasks.tick, slot=slot)
    return True


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    client = connection()
    interval = settings.tick_interval_s
    last_slot = slot_of(time.time(), interval)  # the slot under way at start is not ours to fire
    log.info("ticking every %s s", interval)
    while not stop.is_set():
        HEARTBEAT_FILE.touch()
        now = time.time()
        slot = slot_of(now, interval)
        if slot > last_slot:
            try:
                if fire_once(client, slot, interval):
                    log.info("enqueued tick for slot %s", slot)
                last_slot = slot
            except redis.RedisError as error:
                log.warning("could not fire slot %s, trying again: %s", slot, error)
        # Wake at the next slot boundary, and at least every 5 s to keep the heartbeat fresh.
        stop.wait(min(5.0, interval - now % interval + 0.01))


if __name__ == "__main__":
    main()
