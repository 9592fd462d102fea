"""Deploys: SIGTERM lets the running job finish, and the stopping worker takes no new job. (A
SIGKILLed worker's job is run again: test_charge, which also shows it stuck meanwhile.)"""

from __future__ import annotations

import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import MEASUREMENTS
from tests.integration.stack import Stack, wait_for

pytestmark = pytest.mark.integration


def start_job_and_wait_until_running(stack: Stack, prefix: str, sleep_s: float) -> str:
    key = f"{prefix}-{uuid.uuid4().hex[:8]}"
    stack.post_job(task="demo", key=key, sleep_s=sleep_s, fail_times=0)
    wait_for(lambda: stack.effects(key), lambda e: e["attempts"] >= 1, timeout=30, interval=0.1)
    return key


def test_sigterm_lets_the_running_job_finish_and_the_worker_exit_0(stack: Stack):
    sleep_s = 4.0
    running = start_job_and_wait_until_running(stack, "sigterm", sleep_s)
    assert stack.depth()["in_progress"] >= 1

    # `docker compose stop`: SIGTERM, then SIGKILL at the end of the grace period.
    try:
        with ThreadPoolExecutor(1) as background:
            since, started = time.time(), time.monotonic()
            stopping = background.submit(stack.compose, "stop", "worker", timeout=stack.grace_period_s + 30)
            assert stack.wait_for_signal("worker", since, timeout=30) == signal.SIGTERM
            # Posted the moment the worker has been told to stop: it must not take it, although
            # it has a free process.
            queued = f"queued-{uuid.uuid4().hex[:8]}"
            stack.post_job(task="demo", key=queued, sleep_s=0)
            stopping.result()
            stopped_after = time.monotonic() - started
        MEASUREMENTS.append(f"{stack.lib}: worker stopped {stopped_after:.1f} s after SIGTERM, mid-job")

        state = stack.container("worker")["State"]
        assert state["ExitCode"] == 0, stack.logs("worker")
        assert stopped_after < stack.grace_period_s, f"took {stopped_after:.1f} s"
        assert stack.effects(running) == {"key": running, "attempts": 1, "effects": 1}

        # The job posted during the stop stayed queued, and runs once a worker is back.
        assert stack.effects(queued)["attempts"] == 0
        assert stack.depth()["queues"]["default"] >= 1
    finally:
        stack.compose("start", "worker")  # the next tests need it, also when this one failed
    wait_for(lambda: stack.effects(queued), lambda e: e["effects"] == 1, timeout=60)
