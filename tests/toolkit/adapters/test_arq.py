"""taskq.arq: WorkerSettings for the app's own functions (positional arguments), the time limit and
retry policy, deferral without spending a try, dead letters, and cron schedules, against a real
Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
import redis

import taskq.arq
from taskq.arq import cron_fields, worker_settings
from taskq.deadletters import RedisDeadLetters
from taskq.errors import ConfigError
from taskq.idempotency import KeyBusyError
from taskq.retry import RetryPolicy
from taskq.schedule import Cron, Every
from taskq.settings import ArqSettings
from tests.toolkit.adapters.scrape import assert_cost_does_not_grow_with_the_keyspace

SETTINGS = ArqSettings(job_time_limit_s=2, retry=RetryPolicy(base_s=0.05))
RUNS: dict[str, list] = {}


async def add(ctx, key, a, b, *, scale=1):
    RUNS.setdefault(key, []).append(ctx["job_try"])
    return (a + b) * scale


async def flaky(ctx, key):
    RUNS.setdefault(key, []).append(ctx["job_try"])
    raise ConnectionError(f"blink {ctx['job_try']}")


async def broken(ctx, key):
    RUNS.setdefault(key, []).append(ctx["job_try"])
    raise ValueError("a bug")


async def held(ctx, key):
    RUNS.setdefault(key, []).append(ctx["job_try"])
    if len(RUNS[key]) <= 5:  # more deferrals than tries
        raise KeyBusyError("held by another run", retry_after_s=0.05)


async def slow(ctx, key):
    RUNS.setdefault(key, []).append(ctx["job_try"])
    await asyncio.sleep(10)


def run(redis_url: str, function, *args, **kwargs):
    """Enqueue one job on a queue of its own and run a burst worker until the queue is empty."""
    queue = f"arq:test-{uuid.uuid4().hex[:8]}"
    settings = worker_settings(
        functions=[add, flaky, broken, held, slow], queue_name=queue, redis_url=redis_url, settings=SETTINGS
    )

    async def go():
        pool = await taskq.arq.create_pool(redis_url, queue_name=queue)
        job = await pool.enqueue_job(function.__name__, *args, **kwargs)
        worker = settings.taskq().worker()
        worker.burst = True
        await worker.main()
        await worker.close()
        await pool.aclose()
        return job.job_id

    return asyncio.run(go()), settings


def outcomes(settings) -> dict[str, int]:
    """How the attempts on the queue (one per test) ended, as the exporter reads them."""
    (queue,) = settings.__taskq_operations__().metrics().queues.values()
    return queue.outcomes


def test_positional_and_keyword_arguments_reach_the_function(redis_url: str):
    key = uuid.uuid4().hex
    _, settings = run(redis_url, add, key, 2, 3, scale=10)
    assert RUNS[key] == [1]
    assert outcomes(settings) == {"succeeded": 1, "retried": 0, "dead": 0}


def test_a_transient_error_is_retried_until_the_fourth_try_then_dead(redis_url: str):
    key = uuid.uuid4().hex
    job_id, settings = run(redis_url, flaky, key)
    assert RUNS[key] == [1, 2, 3, 4]
    letter = settings.__taskq_operations__().dead_letters()[0]
    assert letter.id == job_id and letter.task == "flaky" and letter.error == "ConnectionError: blink 4"
    assert outcomes(settings) == {"succeeded": 0, "retried": 3, "dead": 1}


def test_a_permanent_error_is_dead_at_once(redis_url: str):
    key = uuid.uuid4().hex
    _, settings = run(redis_url, broken, key)
    assert RUNS[key] == [1]
    assert outcomes(settings) == {"succeeded": 0, "retried": 0, "dead": 1}


def test_the_time_limit_ends_an_attempt_which_is_retried(redis_url: str):
    key = uuid.uuid4().hex
    job_id, settings = run(redis_url, slow, key)
    assert RUNS[key] == [1, 2, 3, 4]
    (letter,) = [d for d in settings.__taskq_operations__().dead_letters() if d.id == job_id]
    assert "time limit of 2 s exceeded" in letter.error


def test_a_held_key_is_deferred_without_spending_a_try(redis_url: str):
    key = uuid.uuid4().hex
    job_id, settings = run(redis_url, held, key)
    assert RUNS[key] == [1] * 6
    assert job_id not in {d.id for d in settings.__taskq_operations__().dead_letters()}
    assert outcomes(settings) == {"succeeded": 1, "retried": 5, "dead": 0}


def test_requeue_sends_a_dead_job_again_with_fresh_tries(redis_url: str):
    key = uuid.uuid4().hex
    job_id, settings = run(redis_url, broken, key)
    ops = settings.__taskq_operations__()
    assert [d.id for d in ops.requeue([job_id])] == [job_id]
    assert RedisDeadLetters(redis.Redis.from_url(redis_url)).get(job_id) is None


@pytest.mark.parametrize(
    ("schedule", "fields"),
    [
        (Every(2), {"second": set(range(0, 60, 2))}),
        (Every(300), {"second": {0}, "minute": set(range(0, 60, 5))}),
        (Every(21600), {"second": {0}, "minute": {0}, "hour": {0, 6, 12, 18}}),
        (Cron("*/15 * * * *"), {"second": {0}, "minute": {0, 15, 30, 45}}),
        (Cron("30 9 * * mon-fri"), {"second": {0}, "minute": {30}, "hour": {9}, "weekday": {0, 1, 2, 3, 4}}),
        (Cron("0 0 1 jan,jul *"), {"second": {0}, "minute": {0}, "hour": {0}, "day": {1}, "month": {1, 7}}),
    ],
)
def test_intervals_and_cron_expressions_become_arq_cron_fields(schedule, fields):
    assert {k: v for k, v in cron_fields(schedule).items() if v is not None} == fields


@pytest.mark.parametrize(
    ("schedule", "message"),
    [(Every(7), "not a cron schedule"), (Cron("0 0 13 * fri"), "not both")],
)
def test_schedules_arq_cannot_keep_are_refused(schedule, message: str):
    with pytest.raises(ConfigError, match=message):
        cron_fields(schedule)


def test_a_cron_job_is_unique_and_keeps_its_result_so_two_schedulers_enqueue_it_once():
    job = taskq.arq.cron(add, "*/5 * * * *")
    assert job.unique and job.keep_result_s >= 3600 and job.name == "cron:add"


DUE: dict[str, list] = {}


async def late_tick(ctx):
    DUE.setdefault(ctx["job_id"], []).append((taskq.arq.due_time(ctx), ctx["score"]))
    if len(DUE[ctx["job_id"]]) == 1:
        raise ConnectionError("blink")


def test_a_cron_run_enqueued_late_and_retried_keeps_its_due_time(redis_url: str):
    """As the scheduler enqueues a run it is late for (no defer: the score is when it enqueued), and
    then retried after a transient error (Arq moves the score again): the due time stays."""
    queue = f"arq:test-{uuid.uuid4().hex[:8]}"
    job = taskq.arq.cron(late_tick, Every(2))
    settings = worker_settings(cron_jobs=[job], queue_name=queue, redis_url=redis_url, settings=SETTINGS)
    due = datetime(2026, 1, 1, 0, 0, 2, 123000, tzinfo=UTC)
    job_id = f"{job.name}:{int(due.timestamp() * 1000)}"

    async def go():
        pool = await taskq.arq.create_pool(redis_url, queue_name=queue)
        await pool.enqueue_job(job.name, _job_id=job_id)
        worker = settings.taskq().worker()
        worker.burst = True
        await worker.main()
        await worker.close()
        await pool.aclose()

    asyncio.run(go())
    runs = DUE[job_id]
    assert [when for when, _ in runs] == [due, due]
    scores = [score for _, score in runs]
    assert scores[0] > due.timestamp() * 1000 and scores[1] > scores[0], scores


def test_due_time_refuses_a_job_that_is_not_a_cron_run():
    with pytest.raises(ValueError, match=r"taskq\.arq\.cron"):
        taskq.arq.due_time({"job_id": uuid.uuid4().hex})


def test_the_exporter_reads_depth_age_delays_and_running_jobs_with_cheap_commands(redis_url: str):
    queue = f"arq:test-{uuid.uuid4().hex[:8]}"
    settings = worker_settings(functions=[slow], queue_name=queue, redis_url=redis_url, settings=SETTINGS)
    ops = settings.__taskq_operations__()

    async def go():
        pool = await taskq.arq.create_pool(redis_url, queue_name=queue)
        await pool.enqueue_job("slow", "a")
        await pool.enqueue_job("slow", "b")
        await pool.enqueue_job("slow", "c", _defer_by=300)
        await asyncio.sleep(1.1)
        waiting = (await asyncio.to_thread(ops.metrics)).queues[queue]
        worker = settings.taskq().worker()
        worker.max_jobs = 1
        running = asyncio.create_task(worker.main())
        try:
            deadline = time.monotonic() + 15
            while (busy := (await asyncio.to_thread(ops.metrics)).queues[queue]).in_progress < 1:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            snapshot = await asyncio.to_thread(ops.metrics)
            assert [p["role"] for p in snapshot.processes] == ["worker"]
        finally:
            await worker.close()
            running.cancel()
            await pool.aclose()
        return waiting, busy

    waiting, busy = asyncio.run(go())
    assert (waiting.depth, waiting.delayed, waiting.in_progress) == (2, 1, 0)
    assert 1.0 <= waiting.oldest_age_s < 30
    # one running (still in Arq's queue, not counted as waiting), one waiting since before it
    assert (busy.depth, busy.delayed, busy.in_progress) == (1, 1, 1) and busy.oldest_age_s >= 1.0
    # a job started long ago by a worker that is gone, queued again: stuck until a worker runs it
    client = redis.Redis.from_url(redis_url)
    started_ms = (time.time() - SETTINGS.arq_job_timeout_s - 60) * 1000
    client.zadd(taskq.arq.running_key(queue), {"killed-workers-job": started_ms})
    client.zadd(queue, {"killed-workers-job": started_ms})
    assert ops.metrics().queues[queue].stuck == 1
    # Measured with no worker running: Redis counts every client's commands.
    assert_cost_does_not_grow_with_the_keyspace(client, ops.metrics)
