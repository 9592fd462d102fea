"""taskq.dramatiq: the broker built as plain Dramatiq and as django_dramatiq build it, the retry
policy for every actor, deferral without spending a retry, dead letters with their final error,
and the worker-process hooks, against a real Redis."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import dramatiq
import pytest
from dramatiq.middleware import AgeLimit, Callbacks, CurrentMessage, Pipelines, TimeLimit

from taskq.dramatiq import RedisBroker
from taskq.dramatiq.middleware import PutBackWhenStopping, ToolkitRetries, WorkerProcess
from taskq.idempotency import KeyBusyError
from taskq.retry import RetryPolicy
from taskq.settings import DramatiqSettings
from tests.toolkit.adapters.scrape import assert_cost_does_not_grow_with_the_keyspace

SETTINGS = DramatiqSettings(job_time_limit_s=10, retry=RetryPolicy(base_s=0.05))


class AppMiddleware(dramatiq.Middleware):
    """Stands in for an app's own (django_dramatiq's DbConnectionsMiddleware, say)."""


@pytest.fixture
def broker(redis_url: str):
    broker = RedisBroker(url=redis_url, settings=SETTINGS, namespace=f"test-{uuid.uuid4().hex[:8]}")
    dramatiq.set_broker(broker)
    yield broker
    broker.close()


def run_until(broker, condition, timeout: float = 15) -> None:
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)
    finally:
        worker.stop()


def test_the_toolkit_middleware_is_installed_whatever_list_the_broker_is_given(redis_url: str):
    """django_dramatiq passes its MIDDLEWARE setting as is (and [] when it is not set)."""
    for given in ([], [AppMiddleware(), TimeLimit(time_limit=1), Callbacks()]):
        broker = RedisBroker(url=redis_url, middleware=given, settings=SETTINGS)
        kinds = [type(m) for m in broker.middleware]
        assert kinds[-1] is PutBackWhenStopping
        for required in (AgeLimit, TimeLimit, CurrentMessage, ToolkitRetries, WorkerProcess):
            assert kinds.count(required) == 1, (given, kinds)
        assert kinds.index(CurrentMessage) < kinds.index(ToolkitRetries)
        (limit,) = [m for m in broker.middleware if isinstance(m, TimeLimit)]
        assert limit.time_limit == 10_000
        broker.close()
    assert AppMiddleware in kinds and Callbacks in kinds  # the app's own stay
    plain = RedisBroker(url=redis_url, settings=SETTINGS)
    assert not {Callbacks, Pipelines} & {type(m) for m in plain.middleware}  # left out of the defaults
    plain.close()


def test_a_transient_error_is_retried_three_times_then_dead_with_its_final_error(broker):
    runs = []

    @dramatiq.actor(broker=broker, queue_name="default")
    def flaky(key: str) -> None:
        runs.append(CurrentMessage.get_current_message().options.get("retries", 0))
        raise ConnectionError(f"blink {len(runs)}")

    message = flaky.send("k")
    ops = broker.__taskq_operations__()
    run_until(broker, lambda: any(d.id == message.message_id for d in ops.dead_letters()))
    assert runs == [0, 1, 2, 3]
    (letter,) = [d for d in ops.dead_letters() if d.id == message.message_id]
    assert letter.error == "ConnectionError: blink 4" and letter.args == ["k"]  # the last attempt's


def test_a_permanent_error_is_dead_at_once(broker):
    runs = []

    @dramatiq.actor(broker=broker, queue_name="default")
    def broken() -> None:
        runs.append(1)
        raise ValueError("a bug")

    message = broken.send()
    ops = broker.__taskq_operations__()
    run_until(broker, lambda: any(d.id == message.message_id for d in ops.dead_letters()))
    assert runs == [1]


def test_a_held_key_is_deferred_without_spending_a_retry(broker):
    runs = []

    @dramatiq.actor(broker=broker, queue_name="default")
    def held(key: str) -> None:
        runs.append(CurrentMessage.get_current_message().options.get("retries", 0))
        if len(runs) <= 5:  # more deferrals than retries
            raise KeyBusyError("held by another run", retry_after_s=0.05)

    held.send("k")
    run_until(broker, lambda: len(runs) == 6)
    time.sleep(0.3)
    assert runs == [0] * 6 and broker.__taskq_operations__().dead_letters() == []


def test_sigterm_stops_taking_messages_before_dramatiqs_own_handler_runs(broker):
    """The worker process's SIGTERM handler (Dramatiq's, which only sets a flag read once a second)
    is wrapped: the broker's stop flag is set first."""
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda *_: calls.append("dramatiq"))
    try:
        broker.emit_after("process_boot")
        os.kill(os.getpid(), signal.SIGTERM)
        assert calls == ["dramatiq"] and broker.stopping.is_set()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert broker.heartbeat is not None  # the worker process's heartbeat file is on


def test_depth_counts_the_queues_the_app_declares(broker):
    @dramatiq.actor(broker=broker, queue_name="emails")
    def mail() -> None: ...

    mail.send()
    depth = broker.__taskq_operations__().depth()
    assert depth["queues"]["emails"] == 1


def test_the_exporter_reads_depth_age_delays_in_progress_and_dead_letters_with_cheap_commands(broker):
    started, release = threading.Event(), threading.Event()

    @dramatiq.actor(broker=broker, queue_name="exports")
    def export(wait: bool) -> None:
        if wait:
            started.set()
            release.wait(10)

    @dramatiq.actor(broker=broker, queue_name="exports")
    def invalid() -> None:
        raise ValueError("a bug, not a blip")

    ops = broker.__taskq_operations__()
    export.send(False)
    export.send(False)
    export.send_with_options(args=(False,), delay=300_000)
    time.sleep(1.1)
    metrics = ops.metrics().queues["exports"]
    assert (metrics.depth, metrics.delayed, metrics.in_progress, metrics.dead_letters) == (2, 1, 0, 0)
    assert 1.0 <= metrics.oldest_age_s < 30
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        invalid.send()
        deadline = time.monotonic() + 15
        while ops.metrics().queues["exports"].dead_letters != 1:
            assert time.monotonic() < deadline, "the invalid message was never dead-lettered"
            time.sleep(0.05)
        export.send(True)
        assert started.wait(15)

        def held() -> int:
            """What the test finds by scanning every worker's ack sets, as the exporter may not."""
            found = broker.client.scan_iter(match=f"{broker.namespace}:__acks__.*.exports")
            return sum(broker.client.scard(key) for key in found)

        # The running message (and one acked late: Dramatiq acks in batches), and the one with a
        # delay, which the worker holds until its time.
        deadline = time.monotonic() + 5
        while (
            metrics := ops.metrics().queues["exports"]
        ).in_progress != held() and time.monotonic() < deadline:
            time.sleep(0.05)
            metrics = ops.metrics().queues["exports"]
        assert (metrics.depth, metrics.oldest_age_s, metrics.delayed) == (0, 0.0, 1)
        assert metrics.in_progress == held() >= 1
        snapshot = ops.metrics()
        assert [(p["role"], p["capacity"]) for p in snapshot.processes] == [("worker", 1)]
        # a process whose heartbeat stopped, holding a message: stuck until maintenance requeues it
        gone_since_ms = time.time() * 1000 - broker.heartbeat_timeout - 1000
        broker.client.zadd(f"{broker.namespace}:__heartbeats__", {"killed": gone_since_ms})
        broker.client.sadd(f"{broker.namespace}:__acks__.killed.exports", "a-message-id")
        metrics = ops.metrics().queues["exports"]
        assert (metrics.in_progress, metrics.stuck) == (held(), 1)
    finally:
        release.set()
        worker.stop()
    assert ops.metrics().queues["exports"].outcomes == {"succeeded": 3, "retried": 0, "dead": 1}
    # Measured with no worker running: Redis counts every client's commands.
    assert_cost_does_not_grow_with_the_keyspace(broker.client, ops.metrics)
