"""How long the first job after an idle spell waits before it starts (polling consumers wait
for their next poll; blocking ones are woken at once)."""

from __future__ import annotations

import statistics
import time
import uuid

import pytest

from tests.conftest import MEASUREMENTS
from tests.integration.stack import Stack, wait_for

pytestmark = pytest.mark.integration

IDLE_S = 4  # long enough for a polling consumer to back off to its slowest poll
SAMPLES = 8


def test_a_job_posted_after_an_idle_spell_starts_at_once(stack: Stack):
    stack.compose("stop", "scheduler")  # its ticks would keep the worker from idling
    try:
        waits = []
        for _ in range(SAMPLES):
            time.sleep(IDLE_S)
            key = f"latency-{uuid.uuid4().hex[:8]}"
            posted_at = time.time()  # the containers share the host's clock
            stack.post_job(task="demo", key=key, sleep_s=0)
            wait_for(lambda k=key: stack.effects(k), lambda e: e["attempts"] >= 1, timeout=30, interval=0.1)
            waits.append(stack.attempt_times(key)[0] - posted_at)
    finally:
        stack.compose("start", "scheduler")
    median_ms, max_ms = statistics.median(waits) * 1000, max(waits) * 1000
    MEASUREMENTS.append(
        f"{stack.lib}: enqueue to start after {IDLE_S} s idle: median {median_ms:.0f} ms, max {max_ms:.0f} ms"
    )
    # With Dramatiq's default poll (backing off to 1 s) the waits were up to 428 ms (median 243).
    assert max(waits) < 0.35, waits
