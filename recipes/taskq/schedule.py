"""Periodic jobs that fire once per slot, however many schedulers run.

A schedule is `Every(seconds)` (wall-clock multiples of the interval since the epoch, so that
every scheduler agrees where a slot starts) or `Cron("*/5 * * * *")` (the five standard fields,
in UTC unless a time zone is given). A slot is the nominal time a run is due, in whole seconds
since the epoch. Before sending, a scheduler claims (entry name, slot) in Redis with SET NX; the
loser skips. So two schedulers (a second replica, a rolling deploy) send each slot once, a
restarted one never sends a slot again, and both stay live, so losing one loses no run.

The job libraries' own schedulers are used where they can keep this promise (Celery beat with
`taskq.celery.SlotScheduler`, Arq's cron with unique job ids); RQ and Dramatiq use `SlotLoop`.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

from taskq.errors import ConfigError
from taskq.heartbeat import Heartbeat
from taskq.presence import Presence, record_fire

__all__ = ["Cron", "Entry", "Every", "SlotLoop", "claim_slot", "parse_schedule"]

log = logging.getLogger("taskq.schedule")

# A claim is kept for this many of the entry's periods (at least a day): long enough that no
# scheduler, however late or restarted, sends the slot again.
CLAIM_KEPT_PERIODS = 10
MIN_CLAIM_TTL_S = 24 * 3600
CLAIM_PREFIX = "taskq:schedule:"


class Every:
    """Every `seconds`, at wall-clock multiples of it since the epoch (UTC)."""

    def __init__(self, seconds: float) -> None:
        if not seconds >= 1:
            raise ConfigError(f"an interval schedule needs at least 1 s, got {seconds}")
        self.seconds = float(seconds)

    def slot_at(self, now: float) -> int:
        """The slot under way at `now`: the start of its period, in epoch seconds."""
        return int(math.floor(now / self.seconds) * self.seconds)

    def next_after(self, now: float) -> float:
        return (math.floor(now / self.seconds) + 1) * self.seconds

    @property
    def period_s(self) -> float:
        return self.seconds

    def __repr__(self) -> str:
        return f"Every({self.seconds:g})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Every) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash(("every", self.seconds))


_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (name, lowest, highest, names)
_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_PART = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")


def _field(text: str, name: str, low: int, high: int, names: Mapping[str, int], expr: str) -> frozenset[int]:
    def number(token: str) -> int:
        value = names.get(token) if token in names else (int(token) if token.isdigit() else None)
        if value is None or not low <= value <= high:
            raise ConfigError(f"cron {expr!r}: {token!r} is not a valid {name} ({low}-{high})")
        return value

    values: set[int] = set()
    for part in text.lower().split(","):
        match = _PART.match(part)
        if not match:
            raise ConfigError(f"cron {expr!r}: cannot read {part!r} in the {name} field")
        span, step = match.group(1), int(match.group(2) or 1)
        if step < 1:
            raise ConfigError(f"cron {expr!r}: a step must be at least 1 in the {name} field")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (number(t) for t in span.split("-"))
            if first > last:
                raise ConfigError(f"cron {expr!r}: the range {span!r} runs backwards in the {name} field")
        else:
            first = number(span)
            last = high if match.group(2) else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


class Cron:
    """A five-field cron expression (minute hour day-of-month month day-of-week), as cron reads it:
    names (jan, mon), ranges, steps and lists; Sunday is 0 or 7; when both day fields are
    restricted, a day matching either runs. Times are in `tz` (UTC by default)."""

    def __init__(self, expr: str, tz: tzinfo = UTC) -> None:
        self.expr = expr
        self.tz = tz
        fields = _ALIASES.get(expr.strip(), expr).split()
        if len(fields) != 5:
            raise ConfigError(f"cron {expr!r} needs five fields (minute hour day month weekday)")
        parsed = [_field(text, *spec, expr=expr) for text, spec in zip(fields, _FIELDS, strict=True)]
        self.minutes, self.hours, self.days, self.months, weekdays = parsed
        self.weekdays = frozenset(d % 7 for d in weekdays)
        self._any_day = fields[2] == "*"
        self._any_weekday = fields[4] == "*"

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self._any_day or self._any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, now: float) -> float:
        """The first time after `now` (epoch seconds) this expression fires."""
        start = datetime.fromtimestamp(now, self.tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 8):  # every Feb 29 falls within eight years
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            # Through UTC: a wall-clock time in a DST gap or overlap maps to one instant.
                            return candidate.astimezone(UTC).timestamp()
            day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        raise ConfigError(f"cron {self.expr!r} never fires")

    def matches(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        return local.minute in self.minutes and local.hour in self.hours and self._day_matches(local)

    def slot_at(self, now: float) -> int:
        """The latest fire time at or before `now` (epoch seconds): the minute it was due, looked for
        minute by minute backwards (a set lookup each; a yearly expression takes the longest)."""
        minute = datetime.fromtimestamp(now - now % 60, UTC)
        for back in range(366 * 24 * 60 + 1):
            candidate = minute - timedelta(minutes=back)
            if self.matches(candidate):
                return int(candidate.timestamp())
        # Fires less than once a year (29 February): walk forward from eight years back.
        latest, t = None, now - 8 * 366 * 86400
        while (fire := self.next_after(t)) <= now:
            latest = t = fire
        if latest is None:
            raise ConfigError(f"cron {self.expr!r} never fired in the last eight years")
        return int(latest)

    @property
    def period_s(self) -> float:
        """The shortest gap between two runs, at least a minute (for how long claims are kept)."""
        return 60.0

    def __repr__(self) -> str:
        return f"Cron({self.expr!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cron) and (other.expr, other.tz) == (self.expr, self.tz)

    def __hash__(self) -> int:
        return hash(("cron", self.expr, str(self.tz)))


Schedule = Every | Cron


def parse_schedule(value: Schedule | str | float | timedelta) -> Schedule:
    """A schedule from what users write: Every/Cron, a cron string, seconds, or a timedelta."""
    if isinstance(value, Every | Cron):
        return value
    if isinstance(value, str):
        return Cron(value)
    if isinstance(value, timedelta):
        return Every(value.total_seconds())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Every(value)
    raise ConfigError(f"a schedule is a cron string, a number of seconds or a timedelta, got {value!r}")


@dataclass(frozen=True)
class Entry:
    """A periodic job: `send(entry, slot)` (given to the scheduler) sends `task` with args and
    kwargs. slot_kwarg: the keyword the slot (epoch seconds) is passed as, if the task wants it;
    a periodic task need not take one."""

    name: str
    schedule: Schedule
    task: Any
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    slot_kwarg: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", parse_schedule(self.schedule))
        if not re.fullmatch(r"[A-Za-z0-9._:-]{1,200}", self.name):
            raise ConfigError(f"schedule entry name {self.name!r}: letters, digits and ._:- only")

    def call_kwargs(self, slot: int) -> dict[str, Any]:
        return {**self.kwargs, self.slot_kwarg: slot} if self.slot_kwarg else dict(self.kwargs)

    @property
    def claim_ttl_s(self) -> int:
        return int(max(self.schedule.period_s * CLAIM_KEPT_PERIODS, MIN_CLAIM_TTL_S))


class SetNx(Protocol):
    def set(self, name: str, value: Any, *, nx: bool, ex: int) -> Any: ...


def claim_slot(redis: SetNx, name: str, slot: int, ttl_s: int) -> bool:
    """True for the one scheduler that claims (name, slot) first."""
    return bool(redis.set(f"{CLAIM_PREFIX}{name}:{slot}", socket.gethostname(), nx=True, ex=ttl_s))


class SlotLoop:
    """A scheduler process for libraries without a lockable one (RQ, Dramatiq): wakes at each
    entry's next slot, claims it, and calls send(entry, slot) if the claim is its own.

    The slot under way at start is not fired (a restart must not re-send it; another scheduler
    did, or the previous process did). The heartbeat file is touched at least every 5 s.
    """

    def __init__(
        self,
        entries: Iterable[Entry],
        redis: SetNx,
        send: Callable[[Entry, int], Any],
        *,
        heartbeat: Heartbeat | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.entries = list(entries)
        names = [e.name for e in self.entries]
        if len(set(names)) != len(names):
            raise ConfigError(f"schedule entry names must be unique, got {names}")
        self.redis, self.send, self.heartbeat, self.clock = redis, send, heartbeat, clock
        self.stopping = threading.Event()
        self.presence = Presence("scheduler", 0)
        now = clock()
        self.next_due = {e.name: e.schedule.next_after(now) for e in self.entries}

    def run_pending(self) -> list[tuple[str, int]]:
        """Fire every entry whose next slot has come; return the (name, slot) pairs sent."""
        sent, now = [], self.clock()
        for entry in self.entries:
            due = self.next_due[entry.name]
            if due > now:
                continue
            slot = entry.schedule.slot_at(now)  # after a stall: the latest slot only
            try:
                fired = claim_slot(self.redis, entry.name, slot, entry.claim_ttl_s)
                if fired:
                    self.send(entry, slot)
                    sent.append((entry.name, slot))
                    log.info("sent %s for slot %s", entry.name, slot)
            except Exception as error:  # noqa: BLE001 (a broker outage: try again at the next wake)
                log.warning("could not send %s for slot %s, trying again: %s", entry.name, slot, error)
                continue
            self.next_due[entry.name] = entry.schedule.next_after(now)
            if fired:
                record_fire(self.redis, entry.name, slot, self.next_due[entry.name])
        return sent

    def run(self) -> None:
        while not self.stopping.is_set():
            if self.heartbeat is not None:
                self.heartbeat.beat()
            self.presence.announce(self.redis)
            self.run_pending()
            now = self.clock()
            wake = min(self.next_due.values(), default=now + 5)
            # Wake just after the next slot starts, and at least every 5 s for the heartbeat.
            self.stopping.wait(max(0.0, min(5.0, wake - now + 0.01)))
        self.presence.withdraw(self.redis)

    def stop(self) -> None:
        self.stopping.set()
