"""The periodic tick: runs every interval, once per slot, also with two schedulers."""

from __future__ import annotations

import time

import pytest

from tests.integration.stack import Stack, wait_for

pytestmark = pytest.mark.integration


def test_the_scheduler_ticks(stack: Stack):
    before = stack.ticks()["slots"]
    after = wait_for(stack.ticks, lambda t: t["slots"] >= before + 2, timeout=stack.tick_interval_s * 6)
    assert after["runs"] == after["slots"], slots_run_twice(stack)


def slots_run_twice(stack: Stack) -> list[list[str]]:
    """The slots a failed assertion names: when each ran last, to set beside the tests before it."""
    return stack.psql("SELECT to_timestamp(slot), runs, last_run_at FROM ticks WHERE runs > 1 ORDER BY slot")


def digests_per_minute(stack: Stack, since: float) -> list[int]:
    rows = stack.psql(
        "SELECT count(*) FROM digests WHERE ran_at >= to_timestamp("  # noqa: S608 (a number)
        f"{since:.3f}) GROUP BY date_trunc('minute', ran_at) ORDER BY 1"
    )
    return [int(row[0]) for row in rows]


def test_two_schedulers_run_each_slot_once(stack: Stack):
    """The demo's tick (an interval, its slot as an argument) and its digest (a cron expression,
    once a minute, no slot argument: a periodic task as apps write them)."""
    stack.compose("up", "--detach", "--wait", "--no-recreate", "--scale", "scheduler=2", "scheduler")
    try:
        running = stack.compose("ps", "--status", "running", "-q", "scheduler").stdout.split()
        assert len(running) == 2
        before, started = stack.ticks(), time.time()
        next_minute = (int(started) // 60 + 1) * 60
        # Six ticks at least, and past a minute boundary, with time for the digest to run.
        time.sleep(max(stack.tick_interval_s * 6, next_minute + 8 - started))
        after = stack.ticks()
        assert digests_per_minute(stack, next_minute) == [1]
        assert after["slots"] - before["slots"] >= 4, (before, after)
        assert after["runs"] - before["runs"] == after["slots"] - before["slots"], (before, after)
        assert after["runs"] == after["slots"], slots_run_twice(stack)
    finally:
        stack.compose("up", "--detach", "--wait", "--no-recreate", "--scale", "scheduler=1", "scheduler")
