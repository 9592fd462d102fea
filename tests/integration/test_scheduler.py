"""The periodic tick: runs every interval, once per slot, also with two schedulers."""

from __future__ import annotations

import time

import pytest

from tests.integration.stack import Stack, wait_for

pytestmark = pytest.mark.integration


def test_the_scheduler_ticks(stack: Stack):
    before = stack.ticks()["slots"]
    after = wait_for(stack.ticks, lambda t: t["slots"] >= before + 2, timeout=stack.tick_interval_s * 6)
    assert after["runs"] == after["slots"]


def test_two_schedulers_run_each_slot_once(stack: Stack):
    stack.compose("up", "--detach", "--wait", "--no-recreate", "--scale", "scheduler=2", "scheduler")
    try:
        running = stack.compose("ps", "--status", "running", "-q", "scheduler").stdout.split()
        assert len(running) == 2
        before = stack.ticks()
        time.sleep(stack.tick_interval_s * 6)
        after = stack.ticks()
        assert after["slots"] - before["slots"] >= 4, (before, after)
        assert after["runs"] - before["runs"] == after["slots"] - before["slots"], (before, after)
        assert after["runs"] == after["slots"]
    finally:
        stack.compose("up", "--detach", "--wait", "--no-recreate", "--scale", "scheduler=1", "scheduler")
