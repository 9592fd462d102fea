"""Schedules (cron expressions and intervals) and the slot-claiming loop RQ and Dramatiq use: two
schedulers fire each slot of each entry once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from taskq.errors import ConfigError
from taskq.schedule import Cron, Entry, Every, SlotLoop, parse_schedule


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/5 * * * *", "2026-12-01 10:02:30", "2026-12-01 10:05"),
        ("0 3 * * *", "2026-12-01 03:00:00", "2026-12-02 03:00"),
        ("30 9 * * mon-fri", "2026-12-05 12:00:00", "2026-12-07 09:30"),  # Saturday -> Monday
        ("0 0 1 * *", "2026-12-15 00:00:00", "2027-01-01 00:00"),
        ("0 12 29 feb *", "2026-03-01 00:00:00", "2028-02-29 12:00"),
        ("0 0 13 * fri", "2026-12-01 00:00:00", "2026-12-04 00:00"),  # day fields OR'ed: a Friday
        ("15,45 8-10/2 * * 0", "2026-12-01 00:00:00", "2026-12-06 08:15"),  # Sunday as 0
        ("15 8 * * 7", "2026-12-01 00:00:00", "2026-12-06 08:15"),  # and as 7
        ("@hourly", "2026-12-01 10:00:00", "2026-12-01 11:00"),
    ],
)
def test_cron_expressions_fire_when_cron_would(expr: str, after: str, expected: str):
    assert iso(Cron(expr).next_after(at(after))) == expected


def test_a_cron_slot_is_its_latest_fire_time_and_time_zones_are_honoured():
    assert iso(Cron("*/5 * * * *").slot_at(at("2026-12-01 10:07:59"))) == "2026-12-01 10:05"
    assert iso(Cron("0 3 1 * *").slot_at(at("2026-12-20 00:00:00"))) == "2026-12-01 03:00"
    assert iso(Cron("0 12 29 feb *").slot_at(at("2026-12-20 00:00:00"))) == "2024-02-29 12:00"
    berlin = Cron("0 9 * * *", tz=ZoneInfo("Europe/Berlin"))
    assert iso(berlin.next_after(at("2026-12-01 00:00:00"))) == "2026-12-01 08:00"  # 09:00 CET


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * * *", "five fields"),
        ("61 * * * *", "not a valid minute"),
        ("* * * * funday", "not a valid day of week"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "at least 1"),
    ],
)
def test_a_malformed_cron_expression_is_refused_naming_the_field(expr: str, message: str):
    with pytest.raises(ConfigError, match=message):
        Cron(expr)


def test_intervals_are_wall_clock_multiples_and_schedules_parse_from_what_users_write():
    every = Every(300)
    assert iso(every.slot_at(at("2026-12-01 10:07:00"))) == "2026-12-01 10:05"
    assert iso(every.next_after(at("2026-12-01 10:07:00"))) == "2026-12-01 10:10"
    assert parse_schedule(60) == Every(60) and parse_schedule(timedelta(minutes=2)) == Every(120)
    assert parse_schedule("0 * * * *") == Cron("0 * * * *")
    with pytest.raises(ConfigError):
        parse_schedule([60])


class FakeRedis:
    """SET NX as Redis does it, shared by the schedulers of a test."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}

    def set(self, name: str, value: str, *, nx: bool, ex: int) -> bool | None:
        assert nx and ex >= 24 * 3600
        if name in self.keys:
            return None
        self.keys[name] = value
        return True


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_two_schedulers_send_each_slot_of_each_entry_once_and_a_restart_sends_none_again():
    """An interval entry and a cron entry (a user's task taking no slot), two schedulers stepping
    through an hour a few seconds apart, one restarted half-way."""
    redis, sent = FakeRedis(), []

    def user_task() -> None: ...

    entries = [
        Entry("tick", Every(120), user_task, slot_kwarg="slot"),
        Entry("report", "*/15 * * * *", user_task),
    ]
    start = at("2026-12-01 10:00:30")
    clocks = [Clock(start), Clock(start + 3)]
    loops = [
        SlotLoop(entries, redis, lambda e, slot: sent.append((e.name, slot, e.call_kwargs(slot))), clock=c)
        for c in clocks
    ]
    for step in range(0, 3600, 5):
        for n, (loop, clock) in enumerate(zip(loops, clocks, strict=True)):
            clock.now = start + step + 3 * n
            if step == 1800 and n == 1:  # a restart: the new process must not send the slot under way
                loops[1] = loop = SlotLoop(entries, redis, loops[1].send, clock=clock)
            loop.run_pending()
    ticks = [slot for name, slot, _ in sent if name == "tick"]
    reports = [slot for name, slot, _ in sent if name == "report"]
    assert len(ticks) == len(set(ticks)) == 30  # 10:02 to 11:00, every 2 minutes
    assert len(reports) == len(set(reports)) == 4
    assert all(kwargs == {"slot": slot} for name, slot, kwargs in sent if name == "tick")
    assert all(kwargs == {} for name, _, kwargs in sent if name == "report")
    assert {iso(r) for r in reports} == {f"2026-12-01 {t}" for t in ("10:15", "10:30", "10:45", "11:00")}


def test_a_broker_outage_skips_no_slot_it_can_still_send():
    class Flaky(FakeRedis):
        failures = 1

        def set(self, *args, **kwargs):
            if self.failures:
                self.failures -= 1
                raise ConnectionError("broker away")
            return super().set(*args, **kwargs)

    sent, clock = [], Clock(at("2026-12-01 10:00:30"))
    loop = SlotLoop(
        [Entry("tick", Every(60), print)], Flaky(), lambda e, slot: sent.append(slot), clock=clock
    )
    clock.now = at("2026-12-01 10:01:01")
    assert loop.run_pending() == []  # the claim failed: tried again at the next wake
    clock.now = at("2026-12-01 10:01:06")
    assert loop.run_pending() == [("tick", int(at("2026-12-01 10:01:00")))]


def test_entry_names_must_be_unique_and_plain():
    with pytest.raises(ConfigError, match="unique"):
        SlotLoop([Entry("a", 60, print), Entry("a", 120, print)], FakeRedis(), print)
    with pytest.raises(ConfigError, match="letters, digits"):
        Entry("a b", 60, print)
