"""The exporter (`taskq exporter`, the stack's `exporter` service), seen as Prometheus sees it:
scraped over the stack's network, while the queues it reports are made to grow, drain, fail and
lose their broker."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from tests.integration.stack import Stack, wait_for
from tests.promtool import check_metrics

pytestmark = pytest.mark.integration

SAMPLE = re.compile(r'^(?P<name>[a-z_]+)(?:\{queue_name="(?P<queue>[^"]*)"\})? (?P<value>\S+)$')
# Run in the app's container (same image): the exporter is not published, as in production.
SCRAPE = """
import sys, urllib.error, urllib.request
try:
    answer = urllib.request.urlopen("http://exporter:9808/metrics", timeout=10)
except urllib.error.HTTPError as error:
    answer = error
sys.stdout.write(f"{answer.status}\\n{answer.read().decode()}")
"""


def scrape(stack: Stack) -> tuple[int, str]:
    status, _, text = stack.exec("app", "python", "-c", SCRAPE).stdout.partition("\n")
    return int(status), text


def metrics(stack: Stack) -> dict[str, float]:
    """Each queue metric over the stack's queues: counts summed, the oldest age the largest."""
    status, text = scrape(stack)
    assert status == 200, text
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if (sample := SAMPLE.match(line)) and sample["queue"] is not None:
            name, value = sample["name"], float(sample["value"])
            combine = max if name.endswith("_age_seconds") else sum
            totals[name] = combine((totals.get(name, 0.0), value))
    return totals


def test_a_backlog_shows_its_depth_and_its_age_grows_until_the_workers_drain_it(stack: Stack):
    status, text = scrape(stack)
    assert status == 200
    check_metrics(text)
    # The scheduler's ticks would join the backlog: it waits too.
    stack.compose("stop", "scheduler", "worker", timeout=stack.grace_period_s + 60)
    try:
        idle = wait_for(lambda: metrics(stack), lambda m: m["taskq_jobs_in_progress"] == 0, timeout=60)
        posted = 5
        for _ in range(posted):
            stack.post_job(task="demo", key=f"backlog-{uuid.uuid4().hex[:8]}", sleep_s=0)
        waiting = metrics(stack)
        assert waiting["taskq_queue_depth"] == idle["taskq_queue_depth"] + posted
        time.sleep(2)
        later = metrics(stack)
        assert (
            later["taskq_queue_oldest_job_age_seconds"] >= waiting["taskq_queue_oldest_job_age_seconds"] + 1.5
        )
    finally:
        stack.compose("start", "worker", "scheduler")
    drained = wait_for(lambda: metrics(stack), lambda m: m["taskq_queue_depth"] == 0, timeout=90, interval=1)
    assert drained["taskq_queue_oldest_job_age_seconds"] < 5


def test_a_running_job_is_in_progress_and_then_not(stack: Stack):
    stack.post_job(task="demo", key=f"running-{uuid.uuid4().hex[:8]}", sleep_s=4)
    wait_for(lambda: metrics(stack), lambda m: m["taskq_jobs_in_progress"] >= 1, timeout=30, interval=0.3)
    wait_for(lambda: metrics(stack), lambda m: m["taskq_jobs_in_progress"] == 0, timeout=60, interval=1)


def test_a_job_out_of_retries_adds_one_dead_letter(stack: Stack):
    before = metrics(stack)["taskq_dead_letters"]
    job = stack.post_job(task="demo", key=f"dead-{uuid.uuid4().hex[:8]}", sleep_s=0, fail_times=4)
    dead_ids = wait_for(
        lambda: {d["id"] for d in stack.dead_letters()}, lambda ids: job["id"] in ids, timeout=90, interval=1
    )
    assert metrics(stack)["taskq_dead_letters"] == before + 1 and len(dead_ids) == before + 1


def test_a_scrape_fails_while_redis_is_down_and_works_again_after(stack: Stack):
    stack.compose("stop", "redis")
    try:
        status, text = scrape(stack)
        assert status == 500 and "reading Redis failed" in text
    finally:
        stack.compose("start", "redis")
    wait_for(lambda: scrape(stack)[0], lambda status: status == 200, timeout=60, interval=1)
