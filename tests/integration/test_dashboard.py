"""The toolkit's read-only dashboard, the monitor of the stacks whose library has no maintained one."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.integration.stack import Stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.stacks("dramatiq", "arq")]


def test_the_dashboard_shows_queues_workers_and_dead_letters(stack: Stack):
    key = f"dashboard-{uuid.uuid4().hex[:8]}"
    job = stack.post_job(task="demo", key=key, sleep_s=0, fail_times=4)
    auth = (stack.env["MONITOR_USER"], stack.env["MONITOR_PASSWORD"])

    def overview() -> dict:
        response = requests.get(f"{stack.monitor_url}/api/overview", auth=auth, timeout=10)
        response.raise_for_status()
        return response.json()

    shown = wait_for(
        overview, lambda o: job["id"] in {d["id"] for d in o["dead_letters"]}, timeout=60, interval=1
    )
    assert shown["depth"]["dead"] >= 1 and "default" in shown["depth"]["queues"]
    # the exporter's numbers, the same as Prometheus gets
    assert shown["queues"]["default"]["dead_letters"] == shown["depth"]["dead"]
    assert {"oldest_age_s", "stuck", "delayed"} <= set(shown["queues"]["default"])
    assert shown["schedules"]  # the demo scheduler has fired its tick
    assert any(worker["last_seen"] for worker in shown["workers"])
    page = requests.get(stack.monitor_url, auth=auth, timeout=10)
    assert page.status_code == 200 and job["id"] in page.text and key in page.text
    assert "oldest waiting (s)" in page.text and "Schedules" in page.text
    assert requests.get(f"{stack.monitor_url}/api/overview", timeout=10).status_code == 401


def test_the_depth_endpoint_counts_running_jobs_in_the_backlog_an_autoscaler_reads(stack: Stack):
    """The dashboard's backlog counts running jobs, as the exporter's (KEDA's) does."""
    auth = (stack.env["MONITOR_USER"], stack.env["MONITOR_PASSWORD"])
    stack.post_job(task="demo", key=f"depth-{uuid.uuid4().hex[:8]}", sleep_s=4)

    def depth() -> dict:
        response = requests.get(f"{stack.monitor_url}/api/depth", auth=auth, timeout=10)
        response.raise_for_status()
        return response.json()

    busy = wait_for(depth, lambda d: d["in_progress"] >= 1, timeout=30, interval=0.2)
    assert busy["backlog"] == sum(busy["queues"].values()) + busy["in_progress"] >= 1
    assert requests.get(f"{stack.monitor_url}/api/depth", timeout=10).status_code == 401
