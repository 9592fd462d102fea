"""taskq.rq: registered functions with positional and keyword arguments, the retry policy's
classification, deferral without spending a retry, dead letters and requeue, against a real Redis."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from datetime import timedelta

import pytest
import redis
from rq.job import Job, JobStatus

from taskq.errors import ConfigError
from taskq.idempotency import KeyBusyError
from taskq.retry import RetryPolicy
from taskq.rq import Jobs
from taskq.settings import RQ_IDLE_WAIT_S, RQSettings
from tests.toolkit.adapters.scrape import assert_cost_does_not_grow_with_the_keyspace

CALLS: dict[str, list] = {}


def record(key: str, value) -> None:
    CALLS.setdefault(key, []).append(value)


def add(key, a, b, *, scale=1):
    record(key, (a + b) * scale)
    return (a + b) * scale


def flaky(key):
    record(key, "ran")
    raise ConnectionError("the network blinked")


def broken(key):
    record(key, "ran")
    raise ValueError("a bug, not a blip")


def held(key):
    record(key, "ran")
    raise KeyBusyError("held by another run", retry_after_s=30)


def not_registered(key):
    record(key, "ran")


@pytest.fixture
def jobs(redis_url: str) -> Jobs:
    jobs = Jobs(
        connection=redis.Redis.from_url(redis_url),
        queues=[f"q-{uuid.uuid4().hex[:8]}", f"second-{uuid.uuid4().hex[:8]}"],
        settings=RQSettings(job_time_limit_s=10, retry=RetryPolicy(base_s=5)),
    )
    for f in (add, flaky, broken, held):
        jobs.job(f)
    return jobs


def run_burst(jobs: Jobs) -> None:
    jobs.worker(simple=True).work(burst=True, with_scheduler=False)


def test_positional_and_keyword_arguments_survive_the_json_round_trip(jobs: Jobs):
    key = uuid.uuid4().hex
    job = jobs.enqueue(add, key, 2, 3, scale=10)
    run_burst(jobs)
    assert (
        CALLS[key] == [50]
        and Job.fetch(job.id, connection=jobs.connection).get_status() == JobStatus.FINISHED
    )


def test_a_transient_error_is_retried_later_with_a_retry_spent(jobs: Jobs):
    key = uuid.uuid4().hex
    job = jobs.enqueue(flaky, key)
    run_burst(jobs)
    job.refresh()
    assert job.get_status() == JobStatus.SCHEDULED and job.retries_left == 2
    assert job.id in jobs.queue().scheduled_job_registry


def test_a_permanent_error_goes_to_the_dead_letters_at_once(jobs: Jobs):
    key = uuid.uuid4().hex
    job = jobs.enqueue(broken, key)
    run_burst(jobs)
    assert job.id in jobs.queue().failed_job_registry and CALLS[key] == ["ran"]
    (letter,) = [d for d in jobs.__taskq_operations__().dead_letters() if d.id == job.id]
    assert letter.task == "broken" and letter.args == [key] and "ValueError: a bug" in letter.error


def test_a_held_key_is_rescheduled_without_spending_a_retry(jobs: Jobs):
    key = uuid.uuid4().hex
    job = jobs.enqueue(held, key)
    for _ in range(5):  # more deferrals than retries
        run_burst(jobs)
        job.refresh()
        assert job.get_status() == JobStatus.SCHEDULED and job.retries_left == 3
        jobs.queue().enqueue_job(job)  # what the scheduler does when the wait is over
    run_burst(jobs)
    assert CALLS[key] == ["ran"] * 6 and job.id not in jobs.queue().failed_job_registry
    scheduled_in = jobs.queue().scheduled_job_registry.get_scheduled_time(job)
    assert scheduled_in is not None  # waiting, never failed
    assert jobs.settings.retry.defer_s(30) <= jobs.settings.retry.max_delay_s


def stop_an_idle_worker(jobs: Jobs, during_the_stop=lambda: None) -> float:
    """A worker on one queue (RQ then waits with BLMOVE), idle, gets SIGTERM; `during_the_stop`
    runs inside its signal handler, where RQ stops the worker's scheduler (half a second) while
    the BLMOVE is still open on the server. Returns the seconds from the signal to the stop."""
    worker_class = jobs.simple_worker_class

    class Worker(worker_class):
        def _shutdown(self):
            during_the_stop()
            return super()._shutdown()

    worker = Worker(
        [jobs.queue()],
        connection=jobs.connection,
        serializer=jobs.worker().serializer,
        job_class=jobs.job_class,
    )
    signalled: list[float] = []

    def signal_when_idle():
        while worker.get_state() != "idle":
            time.sleep(0.05)
        time.sleep(0.5)  # in its blocking wait
        signalled.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    threading.Thread(target=signal_when_idle, daemon=True).start()
    try:
        worker.work(with_scheduler=False)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    return time.monotonic() - signalled[0]


def test_an_idle_worker_told_to_stop_takes_no_job_and_strands_none(jobs: Jobs):
    """A job enqueued while an idle worker stops stays at the head of its queue (with RQ's own
    stop, the server hands it to the stopping worker's BLMOVE: left in the intermediate list, and
    failed by maintenance a minute later), and the next worker runs it."""
    key, sent = uuid.uuid4().hex, []
    took = stop_an_idle_worker(jobs, lambda: sent.append(jobs.enqueue(add, key, 1, 2)))
    queue = jobs.queue()
    assert jobs.connection.lrange(queue.intermediate_queue_key, 0, -1) == []
    assert jobs.connection.lrange(queue.key, 0, -1) == [sent[0].id.encode()]
    assert key not in CALLS and took < RQ_IDLE_WAIT_S + 2
    run_burst(jobs)
    assert CALLS[key] == [3]


def test_an_idle_worker_stops_within_its_wait(jobs: Jobs):
    assert stop_an_idle_worker(jobs) < RQ_IDLE_WAIT_S + 2


def test_a_job_naming_an_unregistered_function_is_refused_before_import(jobs: Jobs):
    with pytest.raises(ConfigError, match="not registered"):
        jobs.enqueue(not_registered, "k")
    key = uuid.uuid4().hex
    rogue = jobs.queue().enqueue("os.getcwd")  # as if written into Redis by someone else
    run_burst(jobs)
    assert rogue.id in jobs.queue().failed_job_registry and key not in CALLS


def test_requeue_gives_a_dead_letter_a_fresh_set_of_retries(jobs: Jobs):
    key = uuid.uuid4().hex
    job = jobs.enqueue(broken, key)
    run_burst(jobs)
    ops = jobs.__taskq_operations__()
    assert [letter.id for letter in ops.requeue([job.id])] == [job.id]
    job.refresh()
    assert job.get_status() == JobStatus.QUEUED and job.retries_left == 3
    with pytest.raises(KeyError):
        ops.requeue(["no-such-job"])


def test_depth_counts_every_queue_of_the_app(jobs: Jobs):
    jobs.enqueue_to(jobs.queue_names[1], add, "k", 1, 1)
    jobs.enqueue(add, "k", 1, 1)
    depth = jobs.__taskq_operations__().depth()
    assert depth["queues"] == dict.fromkeys(jobs.queue_names, 1) and depth["in_progress"] == 0


def test_functions_must_be_module_level_to_be_registered(jobs: Jobs):
    def local(): ...

    with pytest.raises(ConfigError, match="module-level"):
        jobs.job(local)


def test_the_exporter_reads_depth_age_delays_and_dead_letters_with_cheap_commands(jobs: Jobs, redis_url: str):
    ops = jobs.__taskq_operations__()
    first, second = jobs.queue_names
    assert ops.metrics().queues[first].depth == 0
    jobs.enqueue(add, "k", 1, 1)
    jobs.enqueue(add, "k", 2, 2)
    jobs.queue(second).enqueue_in(timedelta(minutes=5), add, "k", 3, 3)
    time.sleep(1.1)
    metrics = ops.metrics().queues
    assert (metrics[first].depth, metrics[first].delayed) == (2, 0)
    assert 1.0 <= metrics[first].oldest_age_s < 30
    assert (metrics[second].depth, metrics[second].delayed, metrics[second].oldest_age_s) == (0, 1, 0.0)
    run_burst(jobs)
    jobs.enqueue(broken, uuid.uuid4().hex)
    jobs.worker(simple=True).work(burst=True, with_scheduler=False)
    metrics = ops.metrics().queues
    assert (metrics[first].depth, metrics[first].oldest_age_s, metrics[first].in_progress) == (0, 0.0, 0)
    assert metrics[first].dead_letters == 1
    assert metrics[first].outcomes == {"succeeded": 2, "retried": 0, "dead": 1}
    # a job whose worker's lease on it ran out (the worker was killed): stuck until RQ cleans up
    started = jobs.queue(first).started_job_registry.key
    jobs.connection.zadd(started, {"killed-workers-job": time.time() - 10})
    metrics = ops.metrics().queues
    assert (metrics[first].in_progress, metrics[first].stuck) == (1, 1)
    assert_cost_does_not_grow_with_the_keyspace(redis.Redis.from_url(redis_url), ops.metrics)
