"""What only the Dramatiq stack has: the worker's Prometheus metrics, its consumer's handling of
messages it cannot decode, and its prefetch buffer at shutdown."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import time
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


THREADS = 4  # compose's default WORKER_THREADS


def test_jobs_prefetched_by_a_stopping_worker_go_back_to_the_queue_unstarted(stack: Stack):
    """Every thread busy and four more jobs fetched into the worker process's buffer; SIGTERM
    arrives just before the running jobs end. Stock Dramatiq notices SIGTERM up to a second late
    and its freed threads would start the buffered jobs; here none starts before a worker is back."""
    # One worker process, so that which jobs run and which wait in the buffer is known (the
    # scheduler's ticks queue up too, so the queue's depth is not).
    one_process = dataclasses.replace(stack, env={**stack.env, "WORKER_PROCESSES": "1"})
    one_process.compose("up", "--detach", "--no-deps", "--wait", "worker")
    try:
        job_s = 5.0
        busy = [f"busy-{n}-{uuid.uuid4().hex[:8]}" for n in range(THREADS)]
        for key in busy:
            stack.post_job(task="demo", key=key, sleep_s=job_s)
        for key in busy:
            wait_for(lambda k=key: stack.effects(k), lambda e: e["attempts"] == 1, timeout=10, interval=0.05)
        waiting = [f"buffered-{n}-{uuid.uuid4().hex[:8]}" for n in range(4)]
        for key in waiting:
            stack.post_job(task="demo", key=key, sleep_s=0)
        time.sleep(0.5)  # the consumer fetches them into its buffer
        assert [stack.effects(key)["attempts"] for key in waiting] == [0] * 4, "a thread was free"

        # SIGTERM (docker's own stop signal, sent directly to time it) shortly before the first
        # thread is free: inside the second in which stock Dramatiq has not noticed it yet.
        first_free_at = min(stack.attempt_times(key)[0] for key in busy) + job_s
        worker_id = stack.container_id("worker")
        time.sleep(max(0.0, first_free_at - 0.35 - time.time()))
        subprocess.run(["docker", "kill", "--signal=SIGTERM", worker_id], check=True, capture_output=True)
        signalled_before_free = first_free_at - time.time()
        wait = ["docker", "wait", worker_id]  # prints the exit status
        exit_status = subprocess.run(wait, capture_output=True, text=True, timeout=60).stdout
        assert signalled_before_free > 0, "SIGTERM came after the jobs ended: the test proves nothing"
        assert exit_status.strip() == "0", stack.logs("worker")
        assert [stack.effects(key)["effects"] for key in busy] == [1] * THREADS
        assert [stack.effects(key)["attempts"] for key in waiting] == [0] * 4, stack.logs("worker")
    finally:
        stack.compose("up", "--detach", "--no-deps", "--wait", "worker")  # as the stack was
    for key in waiting:
        wait_for(lambda k=key: stack.effects(k), lambda e: e["effects"] == 1, timeout=30, interval=0.5)
