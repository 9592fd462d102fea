"""Security defaults: what is published, who may talk to Redis and the monitor, who runs."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.integration.hostile import PLANTERS
from tests.integration.stack import Stack, wait_for

pytestmark = pytest.mark.integration


def test_only_app_and_monitor_are_published_and_only_on_loopback(stack: Stack):
    """(And Prometheus, when the monitoring profile runs: loopback only too.)"""
    listing = stack.compose("--profile", "monitoring", "ps", "--format", "json").stdout
    services = [json.loads(line) for line in listing.splitlines()]
    published = {
        (service["Service"], publisher["URL"])
        for service in services
        for publisher in service.get("Publishers") or []
        if publisher.get("PublishedPort")
    }
    names = {name for name, _ in published}
    assert {"app", "monitor"} <= names <= {"app", "monitor", "prometheus"}, published
    assert {url for _, url in published} == {"127.0.0.1"}, published


def test_redis_refuses_a_client_without_the_password(stack: Stack):
    probe = "import os, redis; redis.Redis(host='redis', password={}, socket_timeout=5).ping()"
    refused = stack.exec("app", "python", "-c", probe.format("None"), check=False)
    assert refused.returncode != 0
    assert "AuthenticationError" in refused.stderr, refused.stderr
    # The same client with the password gets in: the refusal above was Redis's, not the network's.
    stack.exec("app", "python", "-c", probe.format("os.environ['REDIS_PASSWORD']"))


def test_the_monitor_requires_credentials(stack: Stack):
    assert requests.get(stack.monitor_url, timeout=10).status_code == 401
    wrong = requests.get(stack.monitor_url, auth=("admin", "wrong"), timeout=10)
    assert wrong.status_code == 401
    right = requests.get(
        stack.monitor_url, auth=(stack.env["MONITOR_USER"], stack.env["MONITOR_PASSWORD"]), timeout=10
    )
    assert right.status_code == 200
    if stack.lib == "celery":  # Flower serves /metrics to anyone unless told otherwise
        metrics = f"{stack.monitor_url}/metrics"
        assert requests.get(metrics, timeout=10).status_code == 401
        right = requests.get(
            metrics, auth=(stack.env["MONITOR_USER"], stack.env["MONITOR_PASSWORD"]), timeout=10
        )
        assert right.status_code == 200 and "flower_" in right.text


def test_no_container_runs_as_root(stack: Stack):
    services = stack.compose("ps", "--services", "--status", "running").stdout.split()
    assert {"app", "worker", "scheduler", "monitor", "redis", "postgres"} <= set(services)
    for service in services:
        uid = stack.exec(service, "id", "-u").stdout.strip()
        assert uid != "0", f"{service} runs as root"


@pytest.mark.parametrize("kind", ["pickle", "foreign function", "unreadable"])
def test_a_planted_job_is_refused_and_the_worker_keeps_serving(stack: Stack, kind: str):
    """A job written straight into Redis, whose payload would run a command (as a pickle that
    runs it when decoded, or as a call to `os.system`), or that cannot be read at all. None may
    run, and the worker goes on serving without a restart."""
    marker = f"/tmp/planted-{kind.replace(' ', '-')}-ran"
    worker_started = stack.container("worker")["State"]["StartedAt"]
    PLANTERS[stack.lib][kind](stack, f"touch {marker}")
    wait_for(lambda: stack.depth()["queues"]["default"], lambda n: n == 0, timeout=30)
    time.sleep(1)  # a refused job that had run anyway would have left its marker by now

    assert stack.exec("worker", "test", "-e", marker, check=False).returncode != 0, "the planted job ran"
    assert stack.container("worker")["State"]["StartedAt"] == worker_started  # not restarted
    key = f"after-planted-{uuid.uuid4().hex[:8]}"
    stack.post_job(task="demo", key=key, sleep_s=0)
    wait_for(lambda: stack.effects(key), lambda e: e["effects"] == 1, timeout=30)
