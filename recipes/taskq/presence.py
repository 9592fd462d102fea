"""What workers and schedulers write to Redis so that the exporter can count them cheaply: the
live processes and their job slots, and when each schedule entry last fired.

Celery keeps no worker registry in Redis, Arq keeps one key per worker (found only by a SCAN of
the keyspace), RQ's and Dramatiq's differ: so every process announces itself the same way, in one
hash the exporter reads with one HGETALL (O(processes), never O(keyspace)):

    taskq:processes   "host:pid" -> {"role": "worker"|"scheduler", "capacity": 8, "seen": epoch s,
                                   "busy": 3 (where known)}
    taskq:schedules   entry name -> {"last_fire": slot (epoch s), "next_fire": epoch s}
    taskq:outcomes:Q  "succeeded" | "retried" | "dead" -> jobs of queue Q that ended so (HINCRBY)

The outcome counters live in Redis (as Sidekiq's do), so they survive worker restarts and are the
same counters whichever worker ran the job: one HINCRBY per finished attempt.

Processes write from the loops that already touch their heartbeat file, at most every 5 s; a
stopping process removes its entry, and live ones drop entries not refreshed for an hour (killed
processes'). A failed write is logged and skipped: it never stops a worker.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any

__all__ = [
    "OUTCOMES",
    "PROCESSES_KEY",
    "SCHEDULES_KEY",
    "Presence",
    "count_outcome",
    "live_processes",
    "outcomes_key",
    "record_fire",
    "record_fire_async",
    "schedules",
]

PROCESSES_KEY = "taskq:processes"
SCHEDULES_KEY = "taskq:schedules"
OUTCOMES_KEY_PREFIX = "taskq:outcomes:"
# How an attempt ended: done; failed and sent again (a retry, or a deferral while its key is held
# by another run); failed for good (a dead letter).
OUTCOMES = ("succeeded", "retried", "dead")
ANNOUNCE_EVERY_S = 5.0
# A process whose entry is older than this is not counted live (RQ's idle workers write every
# 15 s, busy ones every job-monitoring interval).
LIVE_FOR_S = 60.0
# Entries this old are dropped by whichever live process looks next (once a minute each).
FORGET_AFTER_S = 3600.0
PRUNE_EVERY_S = 60.0

log = logging.getLogger("taskq.presence")


class Presence:
    """One process's entry in PROCESSES_KEY. announce() is cheap to call often (it writes at most
    every ANNOUNCE_EVERY_S); announce_async() is the same for an asyncio Redis client."""

    def __init__(self, role: str, capacity: int, *, member: str | None = None) -> None:
        if role not in ("worker", "scheduler"):
            raise ValueError(f"role must be 'worker' or 'scheduler', got {role!r}")
        self.role, self.capacity = role, capacity
        self._member = member
        self._next_write = 0.0
        self._next_prune = 0.0

    @property
    def member(self) -> str:
        # Read at each write, not at creation: an app object made before a fork (a prefork pool,
        # gunicorn's preload) serves processes with pids of their own.
        return self._member or f"{socket.gethostname()}:{os.getpid()}"

    def _entry(self, now: float, busy: int | None) -> str:
        entry = {"role": self.role, "capacity": self.capacity, "seen": round(now, 3)}
        return json.dumps(entry if busy is None else {**entry, "busy": busy})

    def _due(self) -> tuple[bool, bool]:
        now = time.time()
        if now < self._next_write:
            return False, False
        self._next_write = now + ANNOUNCE_EVERY_S
        prune = now >= self._next_prune
        if prune:
            self._next_prune = now + PRUNE_EVERY_S
        return True, prune

    def announce(self, client: Any, busy: int | None = None) -> None:
        """busy: the jobs it runs now, where the process knows."""
        write, prune = self._due()
        if not write:
            return
        try:
            client.hset(PROCESSES_KEY, self.member, self._entry(time.time(), busy))
            if prune and (stale := _stale(client.hgetall(PROCESSES_KEY))):
                client.hdel(PROCESSES_KEY, *stale)
        except Exception as error:  # noqa: BLE001 (Redis down: the heartbeat file says so; retry later)
            log.debug("could not announce %s: %s", self.member, error)

    async def announce_async(self, client: Any, busy: int | None = None) -> None:
        write, prune = self._due()
        if not write:
            return
        try:
            await client.hset(PROCESSES_KEY, self.member, self._entry(time.time(), busy))
            if prune and (stale := _stale(await client.hgetall(PROCESSES_KEY))):
                await client.hdel(PROCESSES_KEY, *stale)
        except Exception as error:  # noqa: BLE001 (as above)
            log.debug("could not announce %s: %s", self.member, error)

    def withdraw(self, client: Any) -> None:
        try:
            client.hdel(PROCESSES_KEY, self.member)
        except Exception as error:  # noqa: BLE001 (it lapses after LIVE_FOR_S anyway)
            log.debug("could not withdraw %s: %s", self.member, error)

    async def withdraw_async(self, client: Any) -> None:
        try:
            await client.hdel(PROCESSES_KEY, self.member)
        except Exception as error:  # noqa: BLE001 (as above)
            log.debug("could not withdraw %s: %s", self.member, error)


def _parse(raw: dict) -> dict[str, dict]:
    parsed = {}
    for member, value in raw.items():
        try:
            entry = json.loads(value)
        except ValueError:
            continue
        if isinstance(entry, dict):
            parsed[member.decode() if isinstance(member, bytes) else member] = entry
    return parsed


def _stale(raw: dict) -> list[str]:
    cutoff = time.time() - FORGET_AFTER_S
    return [member for member, entry in _parse(raw).items() if float(entry.get("seen") or 0) < cutoff]


def live_processes(raw: dict, now: float) -> list[dict]:
    """The entries of PROCESSES_KEY (as HGETALL returns them) seen in the last LIVE_FOR_S."""
    return [
        {"member": member, **entry}
        for member, entry in _parse(raw).items()
        if float(entry.get("seen") or 0) >= now - LIVE_FOR_S
    ]


def _fire(slot: float, next_fire: float) -> str:
    return json.dumps({"last_fire": slot, "next_fire": round(next_fire, 3)})


def record_fire(client: Any, name: str, slot: float, next_fire: float) -> None:
    """Say that schedule entry `name` fired for `slot` and is next due at `next_fire`."""
    try:
        client.hset(SCHEDULES_KEY, name, _fire(slot, next_fire))
    except Exception as error:  # noqa: BLE001 (the job was sent; only the metric misses it)
        log.warning("could not record that %s fired: %s", name, error)


async def record_fire_async(client: Any, name: str, slot: float, next_fire: float) -> None:
    try:
        await client.hset(SCHEDULES_KEY, name, _fire(slot, next_fire))
    except Exception as error:  # noqa: BLE001 (as above)
        log.warning("could not record that %s fired: %s", name, error)


def schedules(raw: dict) -> dict[str, tuple[float, float]]:
    """entry name -> (last fire, seconds from it to the next), from SCHEDULES_KEY's HGETALL."""
    found = {}
    for name, entry in _parse(raw).items():
        try:
            last, following = float(entry["last_fire"]), float(entry["next_fire"])
        except (KeyError, TypeError, ValueError):
            continue
        found[name] = (last, max(0.0, following - last))
    return found


def outcomes_key(queue: str) -> str:
    return OUTCOMES_KEY_PREFIX + queue


def count_outcome(client: Any, queue: str | None, outcome: str) -> None:
    """Count one attempt of a job of `queue` that ended as `outcome` (one of OUTCOMES)."""
    if not queue:
        return
    try:
        client.hincrby(outcomes_key(queue), outcome, 1)
    except Exception as error:  # noqa: BLE001 (the job's own work is done; only the metric misses it)
        log.warning("could not count a %s job of %s: %s", outcome, queue, error)
