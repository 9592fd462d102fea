"""Liveness and readiness, including while the broker is down."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.integration.stack import Stack, wait_for

pytestmark = pytest.mark.integration


def readiness(stack: Stack) -> int:
    return requests.get(f"{stack.app_url}/readyz", timeout=10).status_code


def test_live_and_ready(stack: Stack):
    assert requests.get(f"{stack.app_url}/healthz", timeout=5).status_code == 200
    assert readiness(stack) == 200


def test_without_the_broker_the_app_is_not_ready_and_refuses_jobs_with_503(stack: Stack):
    stack.compose("stop", "redis")
    try:
        assert readiness(stack) == 503
        assert requests.get(f"{stack.app_url}/healthz", timeout=5).status_code == 200  # alive
        response = requests.post(f"{stack.app_url}/jobs", json={"task": "demo", "sleep_s": 0}, timeout=30)
        assert response.status_code == 503
        assert "nothing was enqueued" in response.json()["detail"]
    finally:
        stack.compose("start", "redis")
    wait_for(lambda: readiness(stack), lambda status: status == 200, timeout=60, interval=1)
    # Everything reconnects on its own: a job posted now runs.
    key = f"after-outage-{uuid.uuid4().hex[:8]}"
    stack.post_job(task="demo", key=key, sleep_s=0)
    wait_for(lambda: stack.effects(key), lambda e: e["effects"] == 1, timeout=90, interval=0.5)


def test_a_worker_whose_grace_period_cannot_outlast_a_job_refuses_to_start(stack: Stack):
    short = str(stack.time_limit_s)  # not even the time limit, let alone the hard limit
    result = stack.compose(
        "run", "--rm", "--no-deps", "-e", f"STOP_GRACE_PERIOD_S={short}", "worker", check=False, timeout=120
    )
    assert result.returncode != 0
    assert f"STOP_GRACE_PERIOD_S={short} is too short" in result.stdout + result.stderr


def signal_every_worker_process(stack: Stack, name: str) -> None:
    """Send a signal to every process in the worker container: its main process (PID 1, which
    `kill -1` spares) and its children (Celery's pool, Dramatiq's worker processes)."""
    stack.compose("kill", "--signal", f"SIG{name}", "worker")
    # Fails when PID 1 has no children (Arq's worker): nothing else to signal.
    stack.exec("worker", "sh", "-c", f"kill -{name} -1", check=False)


def test_a_worker_that_stops_working_turns_unhealthy_and_recovers(stack: Stack):
    """Frozen (SIGSTOP), the worker stops heartbeating: Docker's healthcheck says so, where a
    check like `rq info` would still pass. Thawed, it is healthy and serving again."""

    def health() -> str:
        return stack.container("worker")["State"]["Health"]["Status"]

    assert health() == "healthy"
    with stack.scheduler_stopped():
        try:
            signal_every_worker_process(stack, "STOP")
            wait_for(health, lambda status: status == "unhealthy", timeout=150, interval=2)
        finally:
            signal_every_worker_process(stack, "CONT")
        wait_for(health, lambda status: status == "healthy", timeout=90, interval=2)
    key = f"after-thaw-{uuid.uuid4().hex[:8]}"
    stack.post_job(task="demo", key=key, sleep_s=0)
    wait_for(lambda: stack.effects(key), lambda e: e["effects"] == 1, timeout=60, interval=0.5)
