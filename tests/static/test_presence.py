"""What workers and schedulers write for the exporter (taskq.presence), against a stand-in for the
three Redis hash commands it uses."""

from __future__ import annotations

import json
import time

import pytest

from taskq import presence
from taskq.presence import PROCESSES_KEY, SCHEDULES_KEY, Presence, live_processes, record_fire, schedules


class Hashes:
    """HSET, HGETALL and HDEL over dicts, counting the writes."""

    def __init__(self) -> None:
        self.data: dict[str, dict[bytes, bytes]] = {}
        self.writes = 0

    def hset(self, key, field, value):
        self.writes += 1
        self.data.setdefault(key, {})[field.encode()] = value.encode()

    def hgetall(self, key):
        return dict(self.data.get(key, {}))

    def hdel(self, key, *fields):
        for field in fields:
            self.data.get(key, {}).pop(field.encode(), None)


class Down:
    def __getattr__(self, name):
        def refuse(*args, **kwargs):
            raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")

        return refuse


def test_a_process_announces_at_most_every_few_seconds_and_withdraws_when_it_stops():
    client, me = Hashes(), Presence("worker", 8, member="host:1")
    for _ in range(100):
        me.announce(client, busy=3)
    assert client.writes == 1
    (entry,) = live_processes(client.hgetall(PROCESSES_KEY), time.time())
    assert entry["member"] == "host:1" and entry["role"] == "worker"
    assert (entry["capacity"], entry["busy"]) == (8, 3)
    me.withdraw(client)
    assert live_processes(client.hgetall(PROCESSES_KEY), time.time()) == []


def test_a_killed_process_stops_counting_after_a_minute_and_is_dropped_after_an_hour(monkeypatch):
    client, now = Hashes(), time.time()
    gone = {"role": "worker", "capacity": 4, "seen": now - presence.LIVE_FOR_S - 1}
    forgotten = {**gone, "seen": now - presence.FORGET_AFTER_S - 1}
    client.hset(PROCESSES_KEY, "host:2", json.dumps(gone))
    client.hset(PROCESSES_KEY, "host:3", json.dumps(forgotten))
    client.hset(PROCESSES_KEY, "host:4", "not json")
    assert live_processes(client.hgetall(PROCESSES_KEY), now) == []
    Presence("scheduler", 0, member="host:5").announce(client)  # a live process prunes
    assert set(client.hgetall(PROCESSES_KEY)) == {b"host:2", b"host:4", b"host:5"}
    (entry,) = live_processes(client.hgetall(PROCESSES_KEY), now)
    assert entry["role"] == "scheduler"


def test_the_member_is_the_pid_of_the_process_that_writes(monkeypatch):
    me = Presence("worker", 1)
    monkeypatch.setattr(presence.os, "getpid", lambda: 4242)
    assert me.member.endswith(":4242")


def test_redis_down_is_logged_and_never_raised():
    me = Presence("worker", 1)
    me.announce(Down())
    me.withdraw(Down())
    record_fire(Down(), "tick", 60, 120)


def test_a_fire_gives_the_entry_its_last_slot_and_interval():
    client = Hashes()
    record_fire(client, "tick", 1_000_020, 1_000_080.0)
    client.hset(SCHEDULES_KEY, "broken", "{}")
    assert schedules(client.hgetall(SCHEDULES_KEY)) == {"tick": (1_000_020.0, 60.0)}


def test_a_role_must_be_a_worker_or_a_scheduler():
    with pytest.raises(ValueError, match="role"):
        Presence("beat", 0)
