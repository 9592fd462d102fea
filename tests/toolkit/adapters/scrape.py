"""What one scrape of the exporter costs Redis, told by Redis itself (INFO commandstats)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from taskq import __version__
from taskq.metrics import Snapshot, exposition
from tests.promtool import check_metrics

# Commands whose cost grows with the whole keyspace: a scrape must never send them.
KEYSPACE_COMMANDS = {"scan", "keys", "randomkey", "dbsize"}
UNRELATED_KEYS = 1_000_000
# Keys made and removed by a Lua loop in chunks, so that Redis is never blocked for long.
FILL = "for i = ARGV[1], ARGV[2] do redis.call('SET', 'unrelated:' .. i, 'x') end"
EMPTY = "for i = ARGV[1], ARGV[2] do redis.call('DEL', 'unrelated:' .. i) end"
CHUNK = 100_000


def commands(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """command -> (calls, microseconds) so far."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): (s["calls"], s["usec"]) for name, s in stats.items()}


def scrape_cost(client: redis.Redis, collect: Callable[[], Snapshot]) -> tuple[dict[str, int], int, float]:
    """(calls per command, Redis CPU in µs, wall seconds) of one collect(); the INFO call that
    measures it is taken out."""
    before = commands(client)
    started = time.perf_counter()
    snapshot = collect()
    wall = time.perf_counter() - started
    after = commands(client)
    calls = {
        name: after[name][0] - before.get(name, (0, 0))[0]
        for name in after
        if after[name][0] != before.get(name, (0, 0))[0]
    }
    usec = sum(after[name][1] - before.get(name, (0, 0))[1] for name in calls if name != "info")
    calls.pop("info", None)
    check_metrics(exposition(snapshot, wall, __version__))
    return calls, usec, wall


def assert_cost_does_not_grow_with_the_keyspace(client: redis.Redis, collect: Callable[[], Snapshot]) -> Any:
    """A scrape with a million unrelated keys in the database sends the same commands as without
    them, none of them a keyspace scan. Returns the two measurements."""
    collect()  # a first read may open connections (CLIENT SETINFO and the like): not a scrape's cost
    small = scrape_cost(client, collect)
    for start in range(1, UNRELATED_KEYS + 1, CHUNK):
        client.eval(FILL, 0, start, start + CHUNK - 1)
    try:
        large = scrape_cost(client, collect)
    finally:
        for start in range(1, UNRELATED_KEYS + 1, CHUNK):
            client.eval(EMPTY, 0, start, start + CHUNK - 1)
    assert not KEYSPACE_COMMANDS & set(small[0]), small[0]
    assert small[0] == large[0], (small, large)
    assert sum(small[0].values()) <= 30, small[0]
    # Shown with `pytest -s`: the numbers the README and the closing notes quote.
    for label, (calls, usec, wall) in (("few keys", small), (f"{UNRELATED_KEYS:,} more keys", large)):
        commands_sent = sum(calls.values())
        print(f"scrape with {label}: {commands_sent} commands, {usec} µs Redis CPU, {wall * 1000:.1f} ms")
    return small, large
