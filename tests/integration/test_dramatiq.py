"""What only the Dramatiq stack has: the worker's Prometheus metrics, and its consumer's handling of
messages it cannot decode."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.integration.hostile import plant_unreadable_dramatiq_message
from tests.integration.stack import Stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.stacks("dramatiq")]

FETCH_METRICS = (
    "import urllib.request as u; print(u.urlopen('http://worker:9191/metrics', timeout=5).read().decode())"
)


def test_the_workers_metrics_are_served_to_the_stacks_network(stack: Stack):
    # Not published to the host (the security tests check that): read from the app container.
    key = f"metrics-{uuid.uuid4().hex[:8]}"
    stack.post_job(task="demo", key=key, sleep_s=0)
    wait_for(lambda: stack.effects(key), lambda e: e["effects"] == 1, timeout=30)

    def processed() -> float:
        metrics = stack.exec("app", "python", "-c", FETCH_METRICS).stdout
        found = re.search(
            r'^dramatiq_messages_total\{[^}]*actor_name="demo"[^}]*\} (\S+)$', metrics, re.MULTILINE
        )
        return float(found.group(1)) if found else 0.0

    wait_for(processed, lambda count: count >= 1, timeout=15, interval=1)


def test_an_unreadable_message_is_dead_lettered_without_stranding_its_batch(stack: Stack):
    """Stock Dramatiq's consumer raises on a message it cannot decode and restarts, forgetting
    the messages it fetched with it: they would wait, unacked, until the worker process died."""
    stack.compose("stop", "worker")
    try:
        plant_unreadable_dramatiq_message(stack, "")
        keys = [f"batch-{n}-{uuid.uuid4().hex[:8]}" for n in range(3)]
        for key in keys:
            stack.post_job(task="demo", key=key, sleep_s=0)
    finally:
        stack.compose("start", "worker")
    for key in keys:  # fetched in one batch with the unreadable message, run at once
        wait_for(lambda k=key: stack.effects(k), lambda e: e["effects"] == 1, timeout=20, interval=0.5)
    unreadable = [d for d in stack.dead_letters() if d["error"] == "the message cannot be decoded"]
    assert unreadable and unreadable[0]["task"] is None
