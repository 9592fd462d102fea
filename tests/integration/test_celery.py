"""What only the Celery stack does."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.integration.stack import Stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.stacks("celery")]


def test_task_events_stay_off_although_flower_runs(stack: Stack):
    """On short jobs, task events halve a worker's throughput, and only Flower's task pages read
    them: the workers send none, and Flower (which turns them on by itself) is told not to."""
    key = f"events-{uuid.uuid4().hex[:8]}"
    stack.post_job(task="demo", key=key, sleep_s=0)
    wait_for(lambda: stack.effects(key), lambda e: e["effects"] == 1, timeout=60, interval=0.5)
    auth = (stack.env["MONITOR_USER"], stack.env["MONITOR_PASSWORD"])
    tasks = requests.get(f"{stack.monitor_url}/api/tasks", auth=auth, timeout=10)
    assert tasks.status_code == 200 and tasks.json() == {}
    workers = requests.get(f"{stack.monitor_url}/api/workers?refresh=1", auth=auth, timeout=30)
    assert workers.status_code == 200 and workers.json()  # Flower still sees the workers
