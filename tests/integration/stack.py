"""A running stack, seen from outside: its HTTP API, its containers, its Postgres rows."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

T = TypeVar("T")


@dataclass
class Stack:
    lib: str
    compose_dir: Path
    env: dict[str, str]
    app_url: str = ""
    monitor_url: str = ""

    # --- docker compose ---------------------------------------------------------------------
    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        command = ["docker", "compose", "--project-directory", str(self.compose_dir), *args]
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def exec(self, service: str, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.compose("exec", "-T", service, *command, check=check)

    def exec_with_input(self, service: str, data: bytes, *command: str) -> None:
        """Run a command in a service with binary standard input (which argv cannot carry)."""
        subprocess.run(
            [
                "docker",
                "compose",
                "--project-directory",
                str(self.compose_dir),
                "exec",
                "-T",
                service,
                *command,
            ],
            env=self.env,
            input=data,
            capture_output=True,
            check=True,
            timeout=60,
        )

    def taskq(self, *args: str) -> str:
        # The app runs the same image as the worker, and stays up while the worker is stopped.
        return self.exec("app", "taskq", *args).stdout

    def psql(self, sql: str) -> list[list[str]]:
        out = self.exec("postgres", "psql", "-U", "taskq", "-d", "taskq", "-At", "-F", "\t", "-c", sql).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def container_id(self, service: str) -> str:
        return self.container_ids(service)[0]

    def container_ids(self, service: str) -> list[str]:
        return self.compose("ps", "--all", "-q", service).stdout.split()

    def one_off_container_id(self, service: str) -> str:
        """The container `docker compose run` started for a service (the newest, if several)."""
        labels = [
            f"label=com.docker.compose.project={self.env['COMPOSE_PROJECT_NAME']}",
            f"label=com.docker.compose.service={service}",
            "label=com.docker.compose.oneoff=True",
        ]
        return self.docker(
            "ps", "--latest", "-q", *(a for label in labels for a in ("--filter", label))
        ).strip()

    def health(self, container_id: str) -> str:
        return self.docker("inspect", "--format", "{{.State.Health.Status}}", container_id).strip()

    def docker(self, *args: str) -> str:
        return subprocess.run(
            ["docker", *args], capture_output=True, text=True, check=True, timeout=120
        ).stdout

    def container(self, service: str) -> dict[str, Any]:
        inspected = subprocess.run(
            ["docker", "inspect", self.container_id(service)], capture_output=True, text=True, check=True
        )
        return json.loads(inspected.stdout)[0]

    def wait_for_signal(self, service: str, since: float, timeout: float) -> int:
        """The first signal Docker sent to the service's container after `since` (a time.time()),
        as a number, once Docker has sent it."""
        container_id = self.container_id(service)
        command = ["docker", "events", f"--since={since:.3f}", f"--filter=container={container_id}"]
        command += ["--filter=event=kill", "--format={{.Actor.Attributes.signal}}"]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as events:
            try:
                ready, _, _ = select.select([events.stdout], [], [], timeout)
                assert ready, f"no signal sent to {service} within {timeout:.0f} s"
                return int(events.stdout.readline())
            finally:
                events.kill()

    def port(self, service: str, port: int) -> str:
        return self.compose("port", service, str(port)).stdout.strip()

    def logs(self, *services: str) -> str:
        return self.compose("logs", "--no-color", "--tail=200", *services, check=False).stdout

    # --- the demo API -----------------------------------------------------------------------
    def post_job(self, **body: Any) -> dict[str, Any]:
        response = requests.post(f"{self.app_url}/jobs", json=body, timeout=10)
        assert response.status_code == 202, response.text
        return response.json()

    def effects(self, key: str) -> dict[str, Any]:
        response = requests.get(f"{self.app_url}/effects/{key}", timeout=10)
        response.raise_for_status()
        return response.json()

    def ticks(self) -> dict[str, int]:
        response = requests.get(f"{self.app_url}/ticks", timeout=10)
        response.raise_for_status()
        return response.json()

    def attempt_times(self, key: str) -> list[float]:
        assert re.fullmatch(r"[A-Za-z0-9._:-]+", key), key  # interpolated into SQL below
        rows = self.psql(
            f"SELECT extract(epoch FROM started_at) FROM attempts WHERE key = '{key}' ORDER BY started_at"  # noqa: S608
        )
        return [float(row[0]) for row in rows]

    def dead_letters(self) -> list[dict[str, Any]]:
        return json.loads(self.taskq("dlq", "list", "--json"))

    def depth(self) -> dict[str, Any]:
        return json.loads(self.taskq("depth", "--json"))

    @contextmanager
    def scheduler_stopped(self) -> Iterator[None]:
        """The scheduler stopped and every job it sent done, for a test that kills or freezes a
        worker: a periodic job caught mid-run runs again once redelivered, and the scheduler
        tests, which count each slot's runs over the stack's life, would see a slot run twice."""
        self.compose("stop", "scheduler", timeout=self.grace_period_s + 60)
        try:
            wait_for(
                self.depth,
                lambda d: d["in_progress"] == 0 and sum(d["queues"].values()) == 0,
                timeout=60,
                interval=0.2,
            )
            yield
        finally:
            self.compose("start", "scheduler")

    @property
    def time_limit_s(self) -> int:
        return int(self.env["JOB_TIME_LIMIT_S"])

    @property
    def grace_period_s(self) -> int:
        return int(self.env["STOP_GRACE_PERIOD_S"])

    @property
    def tick_interval_s(self) -> int:
        return int(self.env["TICK_INTERVAL_S"])


def wait_for(probe: Callable[[], T], until: Callable[[T], bool], timeout: float, interval: float = 0.2) -> T:
    """Call probe until its value satisfies until; the last value, or AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout:.0f} s")
        time.sleep(interval)
        value = probe()
    return value


def docker_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    env.update(overrides)
    return env
