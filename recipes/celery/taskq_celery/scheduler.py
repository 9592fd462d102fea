"""Beat, made safe to run twice: each slot of the tick schedule is sent once, whatever the
number of beat processes (a second replica, a rolling deploy, `--scale scheduler=2`).

Plain `celery beat` has no lock: two of them send every periodic task twice. Here each beat
claims a slot (`floor(now / interval)`) in Redis with SET NX before it sends; the loser skips.
Both beats stay live, so losing one loses no tick, and a restarted beat cannot fire a slot
that already ran. The slot travels with the task, so a tick that waits in the queue still
counts for the slot it was scheduled in.
"""

from __future__ import annotations

import copy
import functools
import math
import socket
import time
from datetime import datetime
from pathlib import Path

import redis
from celery import beat, schedules

HEARTBEAT_FILE = Path("/tmp/beat-heartbeat")


class every_slot(schedules.schedule):  # noqa: N801 (named like Celery's own schedules)
    """Due once per wall-clock multiple of `run_every`, not `run_every` after the last run,
    so that every beat agrees on where a slot starts."""

    def is_due(self, last_run_at: datetime) -> schedules.schedstate:
        interval = self.run_every.total_seconds()
        now = time.time()
        until_next_slot = interval - now % interval
        due = slot_of(now, interval) > slot_of(last_run_at.timestamp(), interval)
        return schedules.schedstate(is_due=due, next=until_next_slot)


def slot_of(timestamp: float, interval: float) -> int:
    return math.floor(timestamp / interval)


class SlotScheduler(beat.Scheduler):
    """Celery's in-memory scheduler, plus a per-slot claim in Redis (nothing on disk, so the
    container's root filesystem stays read-only)."""

    @functools.cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.app.conf.broker_url, socket_timeout=10)

    def tick(self, *args, **kwargs):
        HEARTBEAT_FILE.touch()
        return super().tick(*args, **kwargs)

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        interval = entry.schedule.run_every.total_seconds()
        slot = slot_of(time.time(), interval)
        claim = f"taskq:beat:{entry.name}:{slot}"
        # Kept for ten slots: long enough that no beat, however late, sends this slot again.
        if not self.redis.set(claim, socket.gethostname(), nx=True, ex=int(interval * 10)):
            return None
        entry = copy.copy(entry)
        entry.kwargs = {**entry.kwargs, "slot": slot}
        return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
