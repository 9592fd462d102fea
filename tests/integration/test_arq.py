"""What only the Arq stack has: a health key per worker process, written every few seconds."""

from __future__ import annotations

import time

import pytest

from tests.integration.stack import Stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.stacks("arq")]


def health_keys(stack: Stack) -> set[str]:
    return set(stack.exec("redis", "redis-cli", "--scan", "--pattern", "arq:health-check:*").stdout.split())


def test_each_worker_has_its_own_health_key_which_lapses_soon_after_a_crash(stack: Stack):
    """Arq's default is one key per queue, written hourly by every worker: one worker's graceful
    stop deletes it for all, and after a crash it says healthy for up to an hour."""
    worker_key = f"arq:health-check:{stack.container('worker')['Config']['Hostname']}"
    scheduler_key = f"arq:health-check:{stack.container('scheduler')['Config']['Hostname']}"
    assert {worker_key, scheduler_key} <= health_keys(stack)

    stack.compose("kill", "--signal", "SIGKILL", "worker")
    killed_at = time.monotonic()
    try:
        wait_for(lambda: health_keys(stack), lambda keys: worker_key not in keys, timeout=15, interval=0.5)
        assert time.monotonic() - killed_at < 10
        assert scheduler_key in health_keys(stack)  # another process's crash is not its problem
    finally:
        stack.compose("start", "worker")
    wait_for(lambda: health_keys(stack), lambda keys: worker_key in keys, timeout=30, interval=0.5)
