"""Celery beat that sends each slot of each periodic task once, however many beats run.

    celery -A proj beat --scheduler taskq.celery:SlotScheduler   (setup() makes it the default)

Plain beat has no lock: two beats (a second replica, a rolling deploy) send every periodic task
twice. This scheduler takes the app's own `beat_schedule` as it is (intervals as numbers,
timedeltas or `schedule(...)`, and `crontab(...)`), and before sending an entry claims its slot
in Redis with SET NX; the loser skips. Intervals fire at wall-clock multiples of the interval
(plain beat counts from its own start, so two beats would disagree where a slot starts); a
crontab entry's slot is the minute it was due. Both beats stay live, so losing one loses no run,
and a restarted beat cannot send a slot that already ran. Nothing is kept on disk, so the
container's root filesystem can stay read-only.

The slot (epoch seconds) travels in the message header `taskq_slot`; an entry whose task wants it
as an argument says so with `"options": {"taskq_slot_kwarg": "slot"}`. A task needs neither.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from datetime import UTC, datetime, timedelta

import redis
from celery import beat, schedules

from taskq.heartbeat import DEFAULT_SCHEDULER_FILE, Heartbeat
from taskq.presence import Presence, record_fire
from taskq.schedule import CLAIM_KEPT_PERIODS, MIN_CLAIM_TTL_S, claim_slot

__all__ = ["SlotScheduler", "aligned", "slot_of"]

SLOT_HEADER = "taskq_slot"
SLOT_KWARG_OPTION = "taskq_slot_kwarg"
# How far back a crontab's due minute is looked for (it is normally the current minute).
CRON_LOOKBACK_MINUTES = 24 * 60


class aligned(schedules.schedule):  # noqa: N801 (named like Celery's own schedules)
    """Due once per wall-clock multiple of `run_every`, not `run_every` after the last run."""

    def is_due(self, last_run_at: datetime) -> schedules.schedstate:
        interval = self.run_every.total_seconds()
        now = time.time()
        due = math.floor(now / interval) > math.floor(
            self.maybe_make_aware(last_run_at).timestamp() / interval
        )
        return schedules.schedstate(is_due=due, next=interval - now % interval)


def _cron_matches(cron: schedules.crontab, moment: datetime) -> bool:
    local = moment.astimezone(cron.tz) if cron.tz else moment
    return (
        local.minute in cron.minute
        and local.hour in cron.hour
        and local.day in cron.day_of_month
        and local.month in cron.month_of_year
        and local.isoweekday() % 7 in cron.day_of_week
    )


def slot_of(schedule: schedules.BaseSchedule, now: float) -> int:
    """The slot an entry due at `now` fires for: the start of its interval, or its due minute."""
    if isinstance(schedule, schedules.crontab):
        minute = datetime.fromtimestamp(now - now % 60, UTC)
        for back in range(CRON_LOOKBACK_MINUTES):
            candidate = minute - timedelta(minutes=back)
            if _cron_matches(schedule, candidate):
                return int(candidate.timestamp())
        return int(minute.timestamp())
    if isinstance(schedule, schedules.schedule):
        interval = schedule.run_every.total_seconds()
        return int(math.floor(now / interval) * interval)
    return int(now)  # a schedule of another kind (solar): slots by the second


def _period_s(schedule: schedules.BaseSchedule) -> float:
    if isinstance(schedule, schedules.schedule) and not isinstance(schedule, schedules.crontab):
        return schedule.run_every.total_seconds()
    return 60.0


class SlotScheduler(beat.Scheduler):
    """Celery's in-memory scheduler, with a per-slot claim in Redis and a heartbeat file."""

    heartbeat = Heartbeat(DEFAULT_SCHEDULER_FILE)

    @functools.cached_property
    def presence(self) -> Presence:
        return Presence("scheduler", 0)

    def setup_schedule(self) -> None:
        from taskq.celery import toolkit_of

        toolkit_of(self.app).check()
        super().setup_schedule()
        for entry in self.schedule.values():
            if type(entry.schedule) is schedules.schedule:
                entry.schedule = aligned(entry.schedule.run_every, app=self.app)

    def merge_inplace(self, b) -> None:
        super().merge_inplace(b)
        for entry in self.schedule.values():
            if type(entry.schedule) is schedules.schedule:
                entry.schedule = aligned(entry.schedule.run_every, app=self.app)

    @functools.cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.app.conf.broker_url, socket_timeout=10, socket_connect_timeout=5)

    def tick(self, *args, **kwargs):
        self.heartbeat.beat()
        self.presence.announce(self.redis)
        return super().tick(*args, **kwargs)

    def close(self) -> None:
        self.presence.withdraw(self.redis)
        super().close()

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        slot = slot_of(entry.schedule, time.time())
        ttl = int(max(_period_s(entry.schedule) * CLAIM_KEPT_PERIODS, MIN_CLAIM_TTL_S))
        if advance:
            entry = self.reserve(entry)
        if not claim_slot(self.redis, entry.name, slot, ttl):
            return None  # another beat sent this slot
        entry = copy.copy(entry)
        options = dict(entry.options or {})
        slot_kwarg = options.pop(SLOT_KWARG_OPTION, None)
        options["headers"] = {**(options.get("headers") or {}), SLOT_HEADER: slot}
        entry.options = options
        if slot_kwarg:
            entry.kwargs = {**(entry.kwargs or {}), slot_kwarg: slot}
        result = super().apply_async(entry, producer=producer, advance=False, **kwargs)
        next_in = entry.schedule.remaining_estimate(datetime.fromtimestamp(slot, UTC)).total_seconds()
        record_fire(self.redis, entry.name, slot, time.time() + max(0.0, next_in))
        return result
