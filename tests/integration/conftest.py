"""Boots each stack once per test session, as a user would, and tears it down afterwards."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid

import pytest
from testcontainers.compose import DockerCompose

from tests.conftest import MEASUREMENTS, MONITOR_PORTS, REPO
from tests.integration.stack import Stack, docker_env
from tests.services import image_variables

# Short enough for a test run, with the same relations as the defaults: every promise whose
# timing depends on them (retries, the time limit, SIGKILL redelivery) is checked against them.
TEST_SETTINGS = {
    "JOB_TIME_LIMIT_S": "6",
    "STOP_GRACE_PERIOD_S": "36",
    "RETRY_BASE_S": "1",
    "TICK_INTERVAL_S": "2",
    "HEALTHCHECK_INTERVAL": "2s",
    # Empty ports: Docker picks free ones on 127.0.0.1 (asked back with `docker compose port`).
    "APP_PORT": "",
    "MONITOR_PORT": "",
    "PROMETHEUS_PORT": "",
}


@pytest.fixture(scope="session")
def stack(lib: str):
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"  # Ryuk's image cannot be pulled here
    env = docker_env(
        COMPOSE_PROJECT_NAME=f"taskq-test-{lib}-{uuid.uuid4().hex[:8]}",
        REDIS_PASSWORD=secrets.token_hex(16),
        POSTGRES_PASSWORD=secrets.token_hex(16),
        MONITOR_USER="admin",
        MONITOR_PASSWORD=secrets.token_hex(16),
        **TEST_SETTINGS,
        **image_variables(),
    )
    compose_dir = REPO / "compose" / lib
    started = time.monotonic()
    saved_environ = dict(os.environ)
    os.environ.update(env)  # DockerCompose runs `docker compose` with the process environment
    compose = DockerCompose(compose_dir, compose_file_name="compose.yaml", build=True, wait=True)
    stack = Stack(lib=lib, compose_dir=compose_dir, env=env)
    try:
        try:
            compose.start()
        except subprocess.CalledProcessError as error:
            pytest.fail(f"{lib} stack did not come up:\n{error.stderr}\n{stack.logs()}")
        MEASUREMENTS.append(f"{lib}: stack built and healthy in {time.monotonic() - started:.1f} s")
        stack.app_url = f"http://{stack.port('app', 8000)}"
        stack.monitor_url = f"http://{stack.port('monitor', MONITOR_PORTS[lib])}"
        yield stack
    finally:
        # With the profile: a Prometheus a failed test left running goes too.
        stack.compose("--profile", "monitoring", "down", "--volumes", "--remove-orphans", check=False)
        os.environ.clear()
        os.environ.update(saved_environ)
