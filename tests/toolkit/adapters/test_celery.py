"""taskq.celery applied to a Celery app configured from Django settings (namespace CELERY,
autodiscover_tasks), run by an embedded worker against a real Redis."""

from __future__ import annotations

import base64
import json
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime

import pytest
import redis
from celery import Celery, schedules
from celery.contrib.testing.worker import start_worker

import taskq.celery
from taskq.celery.beat import SlotScheduler, slot_of
from taskq.deadletters import DeadLetter, RedisDeadLetters
from taskq.errors import ConfigError
from taskq.idempotency import KeyBusyError
from taskq.retry import RetryPolicy
from taskq.settings import CelerySettings
from tests.toolkit.adapters.scrape import assert_cost_does_not_grow_with_the_keyspace

CALLS: dict[str, list] = {}


@pytest.fixture(scope="module")
def django_project(tmp_path_factory, redis_url: str) -> str:
    """A Django settings module with the app's own Celery settings, some of which the toolkit
    must override (acks early) and some of which it must keep (a transport option of its own)."""
    root = tmp_path_factory.mktemp("project")
    (root / "shop").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "settings.py").write_text(
        textwrap.dedent(f"""
        SECRET_KEY = "test"
        INSTALLED_APPS = ["shop"]
        CELERY_BROKER_URL = "{redis_url}"
        CELERY_TASK_ACKS_LATE = False
        CELERY_BROKER_TRANSPORT_OPTIONS = {{"max_connections": 20}}
        CELERY_TASK_DEFAULT_QUEUE = "default"
        CELERY_TASK_IGNORE_RESULT = True
        """)
    )
    (root / "shop" / "tasks.py").write_text(
        textwrap.dedent("""
        from celery import shared_task

        from taskq.idempotency import KeyBusyError
        from tests.toolkit.adapters.test_celery import calls, record

        @shared_task(bind=True, taskq_retry=True)
        def flaky(self, key, failures):
            record(key, self.request.retries)
            if len(calls(key)) <= failures:
                raise ConnectionError("the network blinked")

        @shared_task(bind=True)
        def held(self, key, times):
            record(key, self.request.retries)
            if len(calls(key)) <= times:
                raise KeyBusyError("held by another run", retry_after_s=0.1)

        @shared_task(bind=True, taskq_retry=True)
        def broken(self, key):
            record(key, self.request.retries)
            raise ValueError("a bug, not a blip")

        @shared_task
        def report():
            record("report", 0)

        @shared_task
        def tick(slot):
            record("tick", slot)
        """)
    )
    sys.path.insert(0, str(root))
    return "shop.settings"


def record(key: str, retries: int) -> None:
    """What each run of a task saw: its request.retries."""
    CALLS.setdefault(key, []).append(retries)


def calls(key: str) -> list[int]:
    return CALLS.get(key, [])


@pytest.fixture(scope="module")
def app(django_project: str, monkeypatch_module):
    monkeypatch_module.setenv("DJANGO_SETTINGS_MODULE", django_project)
    import django

    django.setup()
    app = Celery("shop")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    settings = CelerySettings(job_time_limit_s=20, retry=RetryPolicy(base_s=0.2))
    toolkit = taskq.celery.setup(app, settings=settings)
    app.autodiscover_tasks(["shop"], force=True)
    assert toolkit is taskq.celery.toolkit_of(app)
    return app


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def worker(app):
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as running:
        yield running


def wait(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_exporter_reads_depth_age_delays_in_progress_and_dead_letters_with_cheap_commands(redis_url: str):
    """An app of its own, on a queue no worker reads; first in this module, because Redis counts
    every client's commands and the module's worker, once started, sends its own. kombu keeps what
    workers hold (running, or a retry held until its ETA) in one hash for all queues, with their
    delivery times: planted here as kombu writes them, one delivered before the hard time limit."""
    queue = f"exports-{uuid.uuid4().hex[:8]}"
    app = Celery("exports", broker=redis_url)
    app.conf.task_default_queue = queue
    taskq.celery.setup(app, settings=CelerySettings(job_time_limit_s=20))
    ops = taskq.celery.operations(app)
    client = redis.Redis.from_url(redis_url)
    assert ops.metrics().queues[queue].depth == 0
    app.send_task("exports.make", args=[1])
    app.send_task("exports.make", args=[2], priority=6)
    time.sleep(1.1)
    metrics = ops.metrics().queues[queue]
    assert (metrics.depth, metrics.in_progress, metrics.delayed) == (2, 0, 0)
    assert 1.0 <= metrics.oldest_age_s < 30
    held = {"body": "", "headers": {"eta": None}, "properties": {}}
    later = {**held, "headers": {"eta": datetime.fromtimestamp(time.time() + 300, UTC).isoformat()}}
    tags = [f"tag-{uuid.uuid4().hex}" for _ in range(4)]
    client.hset(
        "unacked",
        mapping={
            tags[0]: json.dumps([held, "", queue]),
            tags[1]: json.dumps([later, "", queue]),
            tags[2]: json.dumps([held, "", "another-apps-queue"]),
            tags[3]: json.dumps([held, "", queue]),
        },
    )
    client.zadd("unacked_index", {tags[0]: time.time(), tags[1]: time.time(), tags[3]: time.time() - 3600})
    dead = f"dead-{uuid.uuid4().hex}"
    RedisDeadLetters(client).add(DeadLetter(id=dead, task="exports.make", error="ValueError", failed_at=None))
    try:
        metrics = ops.metrics().queues[queue]
        assert (metrics.in_progress, metrics.delayed, metrics.stuck) == (
            2,
            1,
            1,
        ) and metrics.dead_letters >= 1
        assert_cost_does_not_grow_with_the_keyspace(client, ops.metrics)
    finally:
        client.hdel("unacked", *tags)
        client.zrem("unacked_index", *tags)
        RedisDeadLetters(client).remove(dead)


def test_the_toolkit_overrides_the_apps_unsafe_settings_and_keeps_its_own(app, worker):
    conf = app.conf
    assert conf.task_acks_late is True and conf.worker_disable_prefetch is True
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_soft_time_limit == 20 and conf.task_time_limit == 30
    assert conf.broker_transport_options["max_connections"] == 20  # the app's own option kept
    assert conf.broker_transport_options["visibility_timeout"] == app_settings(app).visibility_timeout_s
    assert conf.beat_scheduler == "taskq.celery:SlotScheduler"


def app_settings(app) -> CelerySettings:
    return taskq.celery.toolkit_of(app).settings


def test_an_opted_in_task_retries_transient_errors_and_its_outcomes_are_counted(app, worker):
    key, before = uuid.uuid4().hex, outcomes(app)
    app.tasks["shop.tasks.flaky"].delay(key, 2)
    wait(lambda: len(calls(key)) == 3)
    assert calls(key) == [0, 1, 2]
    # the success is counted after the task returns
    wait(lambda: outcomes(app)["succeeded"] == before["succeeded"] + 1)
    after = outcomes(app)
    assert {o: after[o] - before[o] for o in after} == {"succeeded": 1, "retried": 2, "dead": 0}


def outcomes(app) -> dict[str, int]:
    return taskq.celery.operations(app).metrics().queues[app.conf.task_default_queue].outcomes


def test_a_held_key_is_deferred_without_spending_retries(app, worker):
    """Five deferrals, more than the three retries a task has: it still runs, with retries 0."""
    key = uuid.uuid4().hex
    app.tasks["shop.tasks.held"].delay(key, 5)
    wait(lambda: len(calls(key)) == 6)
    assert calls(key) == [0] * 6
    time.sleep(0.3)
    assert calls(key) == [0] * 6  # and then no more


def test_a_permanent_error_is_a_dead_letter_at_once(app, worker):
    key = uuid.uuid4().hex
    result = app.tasks["shop.tasks.broken"].delay(key)
    letters = RedisDeadLetters(redis.Redis.from_url(app.conf.broker_url))
    wait(lambda: letters.get(result.id) is not None)
    letter = letters.get(result.id)
    assert letter.task == "shop.tasks.broken" and letter.error == "ValueError: a bug, not a blip"
    assert letter.args == [key] and letter.queue == "default"
    assert calls(key) == [0]


def test_a_countdown_longer_than_the_visibility_timeout_allows_is_refused(app):
    longest = app_settings(app).longest_countdown_s
    with pytest.raises(ConfigError, match=r"countdown/ETA .* would run twice"):
        app.tasks["shop.tasks.report"].apply_async(countdown=longest + 60)
    with pytest.raises(ConfigError):
        app.send_task("shop.tasks.report", countdown=longest + 60)


def test_an_older_celery_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(taskq.celery.celery, "VERSION", (5, 5, 3, "", ""))
    with pytest.raises(ConfigError, match=r"needs Celery 5.7 or later.*worker_disable_prefetch"):
        taskq.celery.setup(Celery("old"))


def test_a_non_redis_broker_is_refused_naming_the_setting():
    app = Celery("amqp", broker="amqp://guest@rabbit//")
    taskq.celery.setup(app, settings=CelerySettings())
    # Celery applies the configuration when it is first read, and swallows errors there: the
    # toolkit raises it where the app is used.
    with pytest.raises(ConfigError, match="needs a Redis broker"):
        app.send_task("anything")


def test_two_beats_send_each_slot_of_an_interval_and_a_crontab_entry_once(app, redis_url):
    """The app's own beat_schedule: an interval, and a crontab whose task takes no slot."""
    client = redis.Redis.from_url(redis_url)
    queue = f"beat-{uuid.uuid4().hex[:8]}"
    app.conf.beat_schedule = {
        f"every-{queue}": {
            "task": "shop.tasks.tick",
            "schedule": 3.0,
            "options": {"queue": queue, "taskq_slot_kwarg": "slot"},
        },
        f"cron-{queue}": {
            "task": "shop.tasks.report",
            "schedule": schedules.crontab(minute="*"),
            "options": {"queue": queue},
        },
    }
    beats = [SlotScheduler(app=app, lazy=False) for _ in range(2)]
    for beat in beats:
        for entry in list(beat.schedule.values()):
            if entry.name.endswith(queue):
                beat.apply_async(entry, producer=None, advance=False)
    messages = [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
    assert len(messages) == 2  # one per entry, not one per entry and beat
    sent = {
        m["headers"]["task"]: (m["headers"], json.loads(base64.b64decode(m["body"]))[1]) for m in messages
    }
    tick_headers, tick_kwargs = sent["shop.tasks.tick"]
    report_headers, report_kwargs = sent["shop.tasks.report"]
    assert tick_kwargs == {"slot": tick_headers["taskq_slot"]} and tick_headers["taskq_slot"] % 3 == 0
    assert report_kwargs == {} and report_headers["taskq_slot"] % 60 == 0  # a crontab's slot: its minute


@pytest.mark.parametrize(
    ("cron", "now", "expected"),
    [
        (schedules.crontab(minute="*/15"), "2026-12-01T10:20:30+00:00", "2026-12-01T10:15:00+00:00"),
        (schedules.crontab(minute=0, hour=3), "2026-12-01T03:00:02+00:00", "2026-12-01T03:00:00+00:00"),
    ],
)
def test_a_crontab_slot_is_the_minute_it_was_due(cron, now: str, expected: str):
    from datetime import datetime

    assert (
        slot_of(cron, datetime.fromisoformat(now).timestamp()) == datetime.fromisoformat(expected).timestamp()
    )


def test_an_interval_slot_is_a_wall_clock_multiple():
    assert slot_of(schedules.schedule(60.0), 1_000_075.0) == 1_000_020


def test_a_key_busy_error_outside_a_worker_is_raised_to_the_caller(app):
    with pytest.raises(KeyBusyError):
        app.tasks["shop.tasks.held"](uuid.uuid4().hex, 1)


def test_the_ops_cli_counts_the_apps_queues(app, worker):
    ops = taskq.celery.operations(app)
    depth = ops.depth()
    assert set(depth["queues"]) == {"default"} and depth["dead"] >= 1
