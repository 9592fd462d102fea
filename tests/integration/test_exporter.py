"""The exporter (`taskq exporter`, the stack's `exporter` service), seen as Prometheus sees it:
scraped over the stack's network, while the queues it reports are made to grow, drain, fail and
lose their broker. A job stuck with a killed worker is shown by test_charge's kill test."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.integration.exporter import Metrics, metrics, scrape
from tests.integration.stack import Stack, wait_for
from tests.promtool import check_metrics

pytestmark = pytest.mark.integration


def backlog(stack: Stack) -> dict:
    status, text = scrape(stack, "/backlog?queues=default")
    assert status == 200, text
    return json.loads(text)


def last_fire(m: Metrics) -> float:
    return m.largest("taskq_schedule_last_fire_timestamp_seconds")


def test_a_backlog_shows_its_depth_and_its_age_grows_until_the_workers_drain_it(stack: Stack):
    """Also: workers and schedulers counted live, and gone the moment they stop; the schedule's
    last fire standing still while no scheduler runs."""
    status, text = scrape(stack)
    assert status == 200
    check_metrics(text)
    running = wait_for(
        lambda: metrics(stack),
        lambda m: m.get_one("taskq_workers", role="scheduler") >= 1 and time.time() - last_fire(m) < 10,
        timeout=60,
        interval=1,
    )
    assert (
        running.get_one("taskq_workers", role="worker") >= 1 and running.total("taskq_worker_capacity") >= 1
    )
    # The scheduler's ticks would join the backlog: it waits too.
    stack.compose("stop", "scheduler", "worker", timeout=stack.grace_period_s + 60)
    try:
        idle = wait_for(lambda: metrics(stack), lambda m: m.total("taskq_jobs_in_progress") == 0, timeout=60)
        assert (
            idle.get_one("taskq_workers", role="worker")
            == idle.get_one("taskq_workers", role="scheduler")
            == 0
        )
        assert idle.total("taskq_worker_capacity") == 0
        posted = 5
        for _ in range(posted):
            stack.post_job(task="demo", key=f"backlog-{uuid.uuid4().hex[:8]}", sleep_s=0)
        waiting = metrics(stack)

        def queued(m: Metrics) -> float:
            # A slot the scheduler enqueued ahead of its time (Arq's cron) may fall due meanwhile.
            return m.total("taskq_queue_depth") + m.total("taskq_queue_delayed")

        assert queued(waiting) == queued(idle) + posted
        assert waiting.total("taskq_queue_depth") >= idle.total("taskq_queue_depth") + posted
        time.sleep(2 * stack.tick_interval_s + 1)
        later, age = metrics(stack), "taskq_queue_oldest_job_age_seconds"
        assert later.largest(age) >= waiting.largest(age) + 2 * stack.tick_interval_s
        assert last_fire(later) == last_fire(idle)  # no tick while no scheduler runs
        assert time.time() - last_fire(later) > 2 * stack.tick_interval_s
    finally:
        stack.compose("start", "worker", "scheduler")
    drained = wait_for(
        lambda: metrics(stack), lambda m: m.total("taskq_queue_depth") == 0, timeout=90, interval=1
    )
    succeeded = "taskq_jobs_total"
    wait_for(
        lambda: metrics(stack).total_where(succeeded, outcome="succeeded"),
        lambda done: done >= idle.total_where(succeeded, outcome="succeeded") + posted,
        timeout=60,
        interval=1,
    )
    assert drained.largest("taskq_queue_oldest_job_age_seconds") < 5
    wait_for(
        lambda: last_fire(metrics(stack)), lambda fired: fired > last_fire(later), timeout=60, interval=1
    )


def test_a_running_job_is_in_progress_and_then_not(stack: Stack):
    stack.post_job(task="demo", key=f"running-{uuid.uuid4().hex[:8]}", sleep_s=4)
    progress = "taskq_jobs_in_progress"
    wait_for(lambda: metrics(stack), lambda m: m.total(progress) >= 1, timeout=30, interval=0.3)
    # what KEDA sizes the workers by: the running job counts
    assert backlog(stack)["backlog"] >= 1
    wait_for(lambda: metrics(stack), lambda m: m.total(progress) == 0, timeout=60, interval=1)


def test_a_job_out_of_retries_adds_one_dead_letter(stack: Stack):
    start = metrics(stack)
    before = start.total("taskq_dead_letters")
    job = stack.post_job(task="demo", key=f"dead-{uuid.uuid4().hex[:8]}", sleep_s=0, fail_times=4)
    dead_ids = wait_for(
        lambda: {d["id"] for d in stack.dead_letters()}, lambda ids: job["id"] in ids, timeout=90, interval=1
    )
    end = metrics(stack)
    assert end.total("taskq_dead_letters") == before + 1 and len(dead_ids) == before + 1
    # four attempts: three retried, the last one dead (counted in Redis, whichever worker ran it)
    outcomes = {
        o: end.total_where("taskq_jobs_total", outcome=o) - start.total_where("taskq_jobs_total", outcome=o)
        for o in ("retried", "dead")
    }
    assert outcomes == {"retried": 3, "dead": 1}


def test_a_scrape_fails_while_redis_is_down_and_works_again_after(stack: Stack):
    stack.compose("stop", "redis")
    try:
        status, text = scrape(stack)
        assert status == 500 and "reading Redis failed" in text
    finally:
        stack.compose("start", "redis")
    wait_for(lambda: scrape(stack)[0], lambda status: status == 200, timeout=60, interval=1)
