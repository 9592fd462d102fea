"""The `monitoring` profile (`make up MONITORING=1`): Prometheus scrapes the stack's exporter and
evaluates every alert of recipes/monitoring/alerts.yaml, and its console page draws a growing
backlog, seen by headless Chromium (Debian's) on the stack's network and kept as a screenshot."""

from __future__ import annotations

import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from tests.conftest import MEASUREMENTS, REPO
from tests.integration.exporter import metrics
from tests.integration.stack import Stack, wait_for
from tests.promtool import alert_rules

pytestmark = pytest.mark.integration

ALERTS = {rule["alert"] for rule in alert_rules()}
FIGURES = {"depth", "age", "busy", "outcomes", "dead"}  # the console page's graphs
SCREEN = (1240, 820)
# Where the screenshots stay after the run (git ignores it): the README's picture is one of them.
ARTIFACTS = REPO / ".artifacts"


@pytest.fixture(scope="session")
def browser_image() -> str:
    """The Chromium image's tag (`make browser-image`: built once, in the background by .ci/run)."""
    built = subprocess.run(
        ["make", "--no-print-directory", "browser-image"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return built.stdout.split()[-1]


@pytest.fixture
def prometheus(stack: Stack) -> Iterator[str]:
    """The stack's Prometheus, started as `make up MONITORING=1` would; its URL on the host."""
    profile = ("--profile", "monitoring")
    stack.compose(*profile, "up", "--detach", "--wait", "--no-deps", "prometheus", timeout=300)
    try:
        yield "http://" + stack.compose(*profile, "port", "prometheus", "9090").stdout.strip()
    finally:
        # Two CPUs run the whole suite: the next tests do not pay for a Prometheus they do not use.
        stack.compose(*profile, "rm", "--stop", "--force", "prometheus", check=False)


def api(prometheus: str, path: str, **params: str):
    response = requests.get(f"{prometheus}/api/v1/{path}", params=params, timeout=10)
    response.raise_for_status()
    return response.json()["data"]


def value(prometheus: str, query: str) -> float:
    """An instant query's one value."""
    return float(api(prometheus, "query", query=query)["result"][0]["value"][1])


def test_prometheus_scrapes_the_exporter_and_evaluates_every_alert(stack: Stack, prometheus: str):
    targets = wait_for(
        lambda: api(prometheus, "targets")["activeTargets"],
        lambda found: [t["health"] for t in found] == ["up"],
        timeout=60,
        interval=1,
    )
    assert targets[0]["labels"]["job"] == "taskq-exporter"
    info = api(prometheus, "query", query="taskq_exporter_info")["result"]
    assert [series["metric"]["library"].lower() for series in info] == [stack.lib]

    def alerting_rules() -> list[dict]:
        return [rule for group in api(prometheus, "rules", type="alert")["groups"] for rule in group["rules"]]

    rules = wait_for(
        alerting_rules,
        lambda found: bool(found) and all(rule["health"] == "ok" for rule in found),
        timeout=60,
        interval=1,
    )
    assert {rule["name"] for rule in rules} == ALERTS


class Page(HTMLParser):
    """The rendered console page's state: each graph's data attributes, the alerts line, the body's."""

    def __init__(self, dom: str):
        super().__init__()
        self.figures: dict[str, dict[str, str]] = {}
        self.body: dict[str, str] = {}
        self.alerts: dict[str, str] = {}
        self.alerts_text = ""
        self._in_alerts = False
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag == "figure":
            self.figures[attributes.get("id", "")] = attributes
        elif tag == "body":
            self.body = attributes
        elif attributes.get("id") == "alerts":
            self.alerts, self._in_alerts = attributes, True

    def handle_endtag(self, tag):
        if tag == "div":
            self._in_alerts = False

    def handle_data(self, data):
        if self._in_alerts:
            self.alerts_text += data


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def chromium(stack: Stack, image: str, out: Path, *args: str) -> str:
    """Runs headless Chromium on the stack's network against its Prometheus; what it printed."""
    network = f"{stack.env['COMPOSE_PROJECT_NAME']}_default"
    page = "http://prometheus:9090/consoles/taskq.html"
    command = ["docker", "run", "--rm", "--network", network, "--volume", f"{out}:/out", image]
    command += ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    command += ["--hide-scrollbars", f"--window-size={SCREEN[0]},{SCREEN[1]}"]
    # Virtual time: Chromium runs the page's scripts and waits for their requests, then 10 s more.
    command += ["--virtual-time-budget=10000", *args, page]
    shot = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert shot.returncode == 0, shot.stderr[-3000:]
    return shot.stdout


def test_the_console_page_draws_a_growing_backlog(stack: Stack, prometheus: str, browser_image: str):
    """Workers and scheduler stopped, jobs posted one after another over 15 s: every graph is
    drawn, the waiting-jobs graph reaches the backlog, and the alerts line shows the alert that a
    backlog with no worker raises."""
    stack.compose("stop", "scheduler", "worker", timeout=stack.grace_period_s + 60)
    try:
        waiting = "sum(taskq_queue_depth)"
        # From the exporter itself: Prometheus's last sample may be older than the stop (a tick
        # still waiting then, and run before the worker stopped).
        before = metrics(stack).total("taskq_queue_depth")
        posted = 12
        for _ in range(posted):
            stack.post_job(task="demo", key=f"console-{uuid.uuid4().hex[:8]}", sleep_s=0)
            time.sleep(1.25)
        wait_for(
            lambda: value(prometheus, waiting),
            lambda depth: depth >= before + posted,
            timeout=30,
            interval=1,
        )
        wait_for(
            lambda: {alert["labels"]["alertname"] for alert in api(prometheus, "alerts")["alerts"]},
            lambda names: "TaskqNoWorkers" in names,
            timeout=30,
            interval=1,
        )
        with tempfile.TemporaryDirectory() as out:
            Path(out).chmod(0o777)  # Chromium runs as its image's own user
            started = time.monotonic()
            chromium(stack, browser_image, Path(out), "--screenshot=/out/console.png")
            dom = chromium(stack, browser_image, Path(out), "--dump-dom")
            took = time.monotonic() - started
            MEASUREMENTS.append(f"{stack.lib}: Chromium's screenshot and DOM of the console in {took:.1f} s")
            screenshot = (Path(out) / "console.png").read_bytes()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"console-{stack.lib}.png").write_bytes(screenshot)
    finally:
        stack.compose("start", "worker", "scheduler")

    page = Page(dom)
    assert page.body.get("data-ready") == "true", page.body
    assert set(page.figures) == FIGURES
    for name, figure in page.figures.items():
        assert int(figure["data-points"]) > 0, f"{name}: nothing drawn"
    assert float(page.figures["depth"]["data-highest"]) >= before + posted
    assert page.alerts.get("data-filled") == "true" and "TaskqNoWorkers" in page.alerts_text, page.alerts_text
    assert png_size(screenshot) == SCREEN
    # A drawn page, not an empty one: a blank 1240x820 PNG compresses to a few kilobytes.
    assert len(screenshot) > 30_000, len(screenshot)
    # The next tests start from an empty queue.
    wait_for(lambda: sum(stack.depth()["queues"].values()), lambda n: n == 0, timeout=90, interval=1)
