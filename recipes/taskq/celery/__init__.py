"""The toolkit applied to an app's own Celery app (Celery 5.7+ on Redis).

    app = Celery("proj")
    app.config_from_object("django.conf:settings", namespace="CELERY")   # or your own config
    taskq.celery.setup(app)            # before the tasks are defined (autodiscover_tasks is fine)
    app.autodiscover_tasks()

    @app.task(taskq_retry=True)        # opt in: transient errors retry 3 times with backoff
    def charge(order_id, amount_cents): ...

`setup` reads nothing at import and changes nothing until the app's configuration is read; then
it applies (overriding the app's own values where they would break a promise):
- JSON only, for tasks, results and events: a pickled message is code that runs on unpickling.
- Acks late, no prefetch (`worker_disable_prefetch`), a lost pool process retried rather than
  requeued forever: a killed worker strands only the jobs it was running, and they come back.
- Time limits from JOB_TIME_LIMIT_S (soft T, hard T + 10 s), the visibility timeout derived from
  them and the retry policy (a job still running is never handed to a second worker), and a
  restore sweep every 5 s (kombu's default scans every 100 s).
- A transport that drops an unreadable queue item instead of stopping the worker.
- A countdown or ETA longer than the visibility timeout allows is refused when sent: Redis would
  hand the waiting message to a second worker, which would run it twice.
- A task base class: tasks that opt in (`taskq_retry=True`, or `setup(app, retry_all=True)`)
  retry the policy's transient errors and the soft time limit; every task turns `RetryLater`
  (an idempotency key held by a live run) into a deferral that spends no retry.
- Dead letters: every task that fails for good is kept in Redis (`taskq dlq`).
- A heartbeat file the worker touches from its main loop (a liveness probe without a broker call).
- `beat_scheduler` = `taskq.celery:SlotScheduler` unless the app chose another scheduler.

The queues are the app's own (`task_queues`, or `task_default_queue`, Celery's default `celery`).
"""

from __future__ import annotations

import functools
import json
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import celery
import redis
from celery import Celery, bootsteps
from celery.exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded
from celery.signals import task_failure, task_retry, task_success
from celery.utils.imports import symbol_by_name

from taskq.celery.beat import SlotScheduler
from taskq.celery.transport import ENQUEUED_AT_HEADER
from taskq.context import running
from taskq.deadletters import DEAD_LETTERS_KEY, DeadLetter, RedisDeadLetters, error_line
from taskq.errors import ConfigError
from taskq.heartbeat import DEFAULT_WORKER_FILE, Heartbeat
from taskq.idempotency import identity_of
from taskq.metrics import QueueMetrics, Snapshot, age_s, version_of
from taskq.presence import PROCESSES_KEY, SCHEDULES_KEY, Presence, count_outcome, outcomes_key
from taskq.retry import RetryLater, RetryPolicy
from taskq.settings import CELERY_RESTORE_SWEEP_S, CelerySettings

__all__ = ["CeleryToolkit", "SlotScheduler", "operations", "setup", "toolkit_of"]

MINIMUM_VERSION = (5, 7)
# Beat wakes at least this often, which keeps its heartbeat file fresh.
BEAT_MAX_LOOP_INTERVAL_S = 5
HEARTBEAT_EVERY_S = 5.0
# kombu keeps a queue with priorities in one list per priority step, named
# "<queue>\x06\x16<step>"; messages without a priority go to the plain list.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
# kombu's Redis transport: delivery tag -> message of every delivered, unacknowledged message.
UNACKED_KEY = "unacked"
# ... and delivery tag -> when it was delivered (epoch seconds).
UNACKED_INDEX_KEY = "unacked_index"
# A message delivered longer ago than the hard time limit plus this, and not held for its ETA,
# has no live worker running it: stuck until kombu restores it after the visibility timeout.
STUCK_MARGIN_S = 30

_toolkits: weakref.WeakKeyDictionary[Celery, CeleryToolkit] = weakref.WeakKeyDictionary()


def check_version() -> None:
    if celery.VERSION[:2] < MINIMUM_VERSION:
        raise ConfigError(
            f"taskq.celery needs Celery {'.'.join(map(str, MINIMUM_VERSION))} or later, "
            f"found {celery.__version__}: "
            "task_retry_on_worker_lost (5.7) and worker_disable_prefetch (5.6) are ignored by older "
            "versions without a word, and a killed worker's jobs would be lost or stranded. Upgrade Celery"
        )


@dataclass
class CeleryToolkit:
    """What setup() applied to one app; `toolkit_of(app)` finds it again."""

    app: Celery
    settings: CelerySettings
    retry_all: bool = False
    heartbeat_file: Path = DEFAULT_WORKER_FILE
    applied: dict[str, Any] = field(default_factory=dict)
    # Why the configuration could not be applied (Celery's signals swallow exceptions, so it is
    # raised where the app is used: the worker, beat, the first send).
    error: ConfigError | None = None

    @property
    def policy(self) -> RetryPolicy:
        return self.settings.retry

    @functools.cached_property
    def redis(self) -> redis.Redis:
        """The broker's Redis, for dead letters and depth (one pool per process)."""
        return redis.Redis.from_url(self.app.conf.broker_url, socket_timeout=10, socket_connect_timeout=5)

    @property
    def dead_letters(self) -> RedisDeadLetters:
        return RedisDeadLetters(self.redis)

    def queue_names(self) -> list[str]:
        return sorted(self.app.amqp.queues.consume_from or [self.app.conf.task_default_queue])

    def configuration(self) -> dict[str, Any]:
        """The settings to apply, derived from self.settings and the app's transport options."""
        s = self.settings
        transport_options = {
            **(self.app.conf.broker_transport_options or {}),
            # Longer than a retry waits plus two hard limits: a job still running is never handed
            # to a second worker.
            "visibility_timeout": s.visibility_timeout_s,
            "unacked_restore_interval": CELERY_RESTORE_SWEEP_S,
            "unacked_restore_throttle": 1,
        }
        config: dict[str, Any] = {
            "task_serializer": "json",
            "accept_content": ["json"],
            "result_serializer": "json",
            "result_accept_content": ["json"],
            "event_serializer": "json",
            "task_acks_late": True,
            "task_retry_on_worker_lost": True,
            "task_reject_on_worker_lost": False,
            "worker_prefetch_multiplier": 1,
            "worker_disable_prefetch": True,
            "task_soft_time_limit": s.job_time_limit_s,
            "task_time_limit": s.hard_time_limit_s,
            "broker_transport_options": transport_options,
            "broker_connection_retry_on_startup": True,
            "beat_max_loop_interval": BEAT_MAX_LOOP_INTERVAL_S,
        }
        broker_url = str(self.app.conf.broker_url or "")
        if not broker_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                "taskq.celery needs a Redis broker (broker_url redis://…), "
                f"got {broker_url.split(':')[0] or 'none'}: "
                "set CELERY_BROKER_URL / broker_url to your Redis"
            )
        if str(self.app.conf.broker_transport or "") in ("", "redis", "rediss"):
            config["broker_transport"] = "taskq.celery.transport:Transport"
        if self.app.conf.beat_scheduler in (
            "celery.beat:PersistentScheduler",
            "celery.beat.PersistentScheduler",
        ):
            config["beat_scheduler"] = "taskq.celery:SlotScheduler"
        return config

    def idempotency(self, store: Any) -> Any:
        """The idempotency helper over `store`, with its lease from this app's hard time limit."""
        from taskq.idempotency import Idempotency

        return Idempotency(store, lease_s=self.settings.lease_s)

    def apply_configuration(self) -> None:
        try:
            self.applied = self.configuration()
        except ConfigError as error:
            self.error = error
            raise
        self.app.conf.update(self.applied)

    def check(self) -> None:
        """Raise what kept the configuration from being applied, if anything did."""
        if not self.app.configured:
            self.app.conf.get("broker_url")  # reading it applies the toolkit's configuration
        if self.error is not None:
            raise self.error


def toolkit_of(app: Celery) -> CeleryToolkit:
    try:
        return _toolkits[app]
    except KeyError:
        raise ConfigError("taskq.celery.setup(app) was not called for this Celery app") from None


def setup(
    app: Celery,
    *,
    settings: CelerySettings | None = None,
    retry_all: bool = False,
    heartbeat_file: str | Path = DEFAULT_WORKER_FILE,
) -> CeleryToolkit:
    """Apply the toolkit to `app`; call it right after creating the app, before its tasks are
    defined. settings: CelerySettings.from_env() when not given (read now, not at import)."""
    check_version()
    if app in _toolkits:
        return _toolkits[app]
    toolkit = CeleryToolkit(
        app=app,
        settings=settings or CelerySettings.from_env(),
        retry_all=retry_all,
        heartbeat_file=Path(heartbeat_file),
    )
    _toolkits[app] = toolkit

    if app.configured:
        toolkit.apply_configuration()
    else:
        # The app reads its configuration (Django settings, config_from_object) lazily: apply on
        # top of it when that happens, so that nothing is read at import.
        app.on_after_configure.connect(lambda **_: toolkit.apply_configuration(), weak=False)

    _install_task_class(app, toolkit)
    _guard_countdowns(app, toolkit)
    task_failure.connect(_keep_dead_letter, weak=False, dispatch_uid="taskq.celery.dead_letters")
    task_success.connect(_count_success, weak=False, dispatch_uid="taskq.celery.count_success")
    task_retry.connect(_count_retry, weak=False, dispatch_uid="taskq.celery.count_retry")
    app.steps["worker"].add(HeartbeatStep)
    return toolkit


# --- tasks ------------------------------------------------------------------------------------
def defer(task: celery.Task, countdown: float) -> Retry:
    """Send the running task again after countdown seconds with its retry count unchanged, and
    return the Retry to raise: the current run ends as retried (acked), spending nothing."""
    request = task.request
    signature = task.signature_from_request(request, countdown=countdown)
    if not request.is_eager:
        signature.apply_async()
    return Retry("deferred: its key is held by another run", when=countdown)


def _install_task_class(app: Celery, toolkit: CeleryToolkit) -> None:
    base = symbol_by_name(app.task_cls)  # Celery's, or DjangoTask (its delay_on_commit stays)

    class Task(base):
        """Retries, deferrals and the soft time limit, the toolkit's way (see taskq.celery)."""

        # Set per task with @app.task(taskq_retry=True), or for all with setup(retry_all=True).
        taskq_retry = toolkit.retry_all

        def __call__(self, *args, **kwargs):
            try:
                with running(self.name):
                    return super().__call__(*args, **kwargs)
            except (Retry, Ignore, Reject):
                raise
            except RetryLater as later:
                if self.request.called_directly:
                    raise
                raise defer(self, toolkit.policy.defer_s(later.retry_after_s)) from later
            except Exception as error:
                if self.request.called_directly or not self.taskq_retry:
                    raise
                if isinstance(error, SoftTimeLimitExceeded) or toolkit.policy.is_transient(error):
                    countdown = toolkit.policy.delay_s(self.request.retries)
                    # Raises Retry; once the retries are spent, raises error itself: a dead letter.
                    raise self.retry(
                        exc=error, countdown=countdown, max_retries=toolkit.policy.max_retries
                    ) from error
                raise

    app.task_cls = Task
    app.__dict__.pop("Task", None)  # Celery caches the class built from task_cls


def _guard_countdowns(app: Celery, toolkit: CeleryToolkit) -> None:
    """Every send (delay, apply_async, retry, beat, chains) goes through app.send_task."""
    send_task = app.send_task

    @functools.wraps(send_task)
    def guarded(name, args=None, kwargs=None, countdown=None, eta=None, **options):
        wait = countdown
        if eta is not None:
            moment = eta if isinstance(eta, datetime) else datetime.fromisoformat(str(eta))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            wait = (moment - datetime.now(UTC)).total_seconds()
        toolkit.check()
        longest = toolkit.settings.longest_countdown_s
        if wait is not None and wait > longest:
            raise ConfigError(
                f"{name}: a countdown/ETA of {wait:.0f} s is longer than {longest:.0f} s: "
                "Redis would hand the waiting message to a second worker after the visibility timeout "
                f"({toolkit.settings.visibility_timeout_s} s) and it would run twice. Schedule it "
                "with beat, or raise JOB_TIME_LIMIT_S / RETRY_BASE_S, which the timeout derives from"
            )
        return send_task(name, args, kwargs, countdown=countdown, eta=eta, **options)

    app.send_task = guarded


def _keep_dead_letter(sender=None, task_id=None, exception=None, args=None, kwargs=None, **_) -> None:
    """Every final failure lands here: retries spent, a permanent error, the hard time limit
    (sent from the worker's main process), a pool process lost after its last retry. Keyed by
    job id, so that Celery sending this twice for a hard time limit leaves one entry."""
    toolkit = _toolkits.get(getattr(sender, "app", None))
    if toolkit is None or task_id is None:
        return
    identity = identity_of(exception) if exception is not None else None
    request = getattr(sender, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    added = toolkit.dead_letters.add(
        DeadLetter(
            id=task_id,
            task=sender.name,
            error=error_line(exception) if exception is not None else None,
            failed_at=None,
            args=list(args or []),
            kwargs=dict(kwargs or {}),
            queue=delivery.get("routing_key"),
            scope=identity[0] if identity else None,
            key=identity[1] if identity else None,
        )
    )
    if added:  # Celery reports a hard time limit twice: one dead job
        count_outcome(toolkit.redis, delivery.get("routing_key"), "dead")


def _count(task: Any, request: Any, outcome: str) -> None:
    toolkit = _toolkits.get(getattr(task, "app", None)) if task is not None else None
    if toolkit is None:
        return  # another app's task, or one run in the caller (eager)
    delivery = getattr(request, "delivery_info", None) or {}
    count_outcome(toolkit.redis, delivery.get("routing_key"), outcome)


def _count_success(sender=None, **_) -> None:
    _count(sender, getattr(sender, "request", None), "succeeded")


def _count_retry(sender=None, request=None, **_) -> None:
    _count(sender, request, "retried")


class HeartbeatStep(bootsteps.StartStopStep):
    """Touches the heartbeat file from the worker's own event loop. The timer runs in the main
    process, so the file stays fresh while every pool process is busy with a long job: only a
    main loop that stopped turning goes stale. No broker round-trip, unlike `celery inspect ping`."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_entry = None
        self.toolkit = toolkit = _toolkits.get(worker.app)
        if toolkit is not None:
            toolkit.check()
            toolkit.settings.check()  # a grace period too short for a job refuses to start the worker
        self.heartbeat = Heartbeat(toolkit.heartbeat_file) if toolkit else None
        self.presence = Presence("worker", worker.concurrency or 1)

    def beat(self) -> None:
        self.heartbeat.beat()
        self.presence.announce(self.toolkit.redis)

    def start(self, worker):
        if self.heartbeat is not None:
            self.beat()
            self.timer_entry = worker.timer.call_repeatedly(HEARTBEAT_EVERY_S, self.beat)

    def stop(self, worker):
        if self.timer_entry is not None:
            self.timer_entry.cancel()
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.presence.withdraw(self.toolkit.redis)


# --- the ops CLI and dashboard -----------------------------------------------------------------
def operations(app: Celery):
    from taskq.cli import Operations

    toolkit = toolkit_of(app)

    def depth() -> dict[str, Any]:
        client, names = toolkit.redis, toolkit.queue_names()
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(name)
                for step in PRIORITY_STEPS:
                    pipe.llen(f"{name}{PRIORITY_SEPARATOR}{step}")
            pipe.hlen(UNACKED_KEY)
            counts = pipe.execute()
        per_queue = 1 + len(PRIORITY_STEPS)
        queues = {name: sum(counts[i * per_queue : (i + 1) * per_queue]) for i, name in enumerate(names)}
        return {"queues": queues, "dead": toolkit.dead_letters.count(), "in_progress": int(counts[-1])}

    def metrics() -> Snapshot:
        """One pipelined round trip: each queue's lists (one per priority step) with their oldest
        message, the unacknowledged messages (O(jobs in flight): kombu keeps them in one hash for
        all queues, with the ETA-held retries among them) and those delivered too long ago, the
        live processes and schedule entries, and the dead letters (O(1) for one queue,
        O(dead letters) for several: the store is one hash)."""
        client, names = toolkit.redis, toolkit.queue_names()
        lists = {
            name: [name, *(f"{name}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS)] for name in names
        }
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                for key in lists[name]:
                    pipe.llen(key)
                    pipe.lindex(key, -1)  # kombu pushes on the left: the oldest is on the right
            for name in names:
                pipe.hgetall(outcomes_key(name))
            pipe.hgetall(UNACKED_KEY)
            pipe.zrangebyscore(
                UNACKED_INDEX_KEY, "-inf", time.time() - toolkit.settings.hard_time_limit_s - STUCK_MARGIN_S
            )
            pipe.hgetall(PROCESSES_KEY)
            pipe.hgetall(SCHEDULES_KEY)
            if len(names) == 1:
                pipe.hlen(DEAD_LETTERS_KEY)
            else:
                pipe.hvals(DEAD_LETTERS_KEY)
            answers = pipe.execute()
        now, snapshot = time.time(), Snapshot("Celery", version_of("celery"))
        unacked, long_ago, processes, schedules, dead = answers[-5:]
        snapshot.add_presence(processes, schedules, now)
        outcomes = answers[-5 - len(names) : -5]
        for name, counts in zip(names, outcomes, strict=True):
            snapshot.queues[name] = QueueMetrics().add_outcomes(counts)
        for i, name in enumerate(names):
            queue, per = snapshot.queues[name], 2 * len(lists[name])
            counts, heads = answers[per * i : per * (i + 1) : 2], answers[per * i + 1 : per * (i + 1) : 2]
            queue.depth = sum(int(n) for n in counts)
            queue.oldest_age_s = max((age_s(now, *_times(head)) for head in heads if head), default=0.0)
        long_ago = set(long_ago)
        for tag, raw in unacked.items():
            queue_name, times = _unacked(raw)
            if queue_name in snapshot.queues:
                due = max((t for t in times if t is not None), default=0.0)
                if due > now:
                    snapshot.queues[queue_name].delayed += 1
                else:
                    snapshot.queues[queue_name].in_progress += 1
                    snapshot.queues[queue_name].stuck += tag in long_ago
        if isinstance(dead, int):
            snapshot.queues[names[0]].dead_letters = dead
        else:
            for raw in dead:
                queue_name = DeadLetter.from_json(raw).queue
                if queue_name in snapshot.queues:
                    snapshot.queues[queue_name].dead_letters += 1
        return snapshot

    def requeue(job_ids: list[str] | None) -> list[DeadLetter]:
        """Send dead jobs again, as new messages with a fresh set of retries. A job is sent before
        its entry is removed: a crash in between leaves it both queued and listed."""
        store = toolkit.dead_letters
        letters = store.all() if job_ids is None else [store.get(i) or _missing(i) for i in job_ids]
        for letter in letters:
            options = {"queue": letter.queue} if letter.queue else {}
            app.send_task(letter.task, args=letter.args, kwargs=letter.kwargs, task_id=letter.id, **options)
            store.remove(letter.id)
        return letters

    return Operations(
        library="Celery",
        depth=depth,
        dead_letters=lambda: toolkit.dead_letters.all(),
        requeue=requeue,
        workers=list,
        settings=toolkit.settings,
        metrics=metrics,
    )


def _times(raw: bytes | dict) -> tuple[float | None, float | None]:
    """(sent, ETA) of a kombu message as stored in Redis, in epoch seconds, None when unknown."""
    try:
        headers = (raw if isinstance(raw, dict) else json.loads(raw)).get("headers") or {}
    except (ValueError, AttributeError):
        return None, None
    sent = headers.get(ENQUEUED_AT_HEADER)
    eta = headers.get("eta")
    try:
        eta_s = datetime.fromisoformat(eta).timestamp() if eta else None
    except (TypeError, ValueError):
        eta_s = None
    return (float(sent) if isinstance(sent, int | float) else None), eta_s


def _unacked(raw: bytes) -> tuple[str | None, tuple[float | None, float | None]]:
    """The queue (routing key) of an unacknowledged message, and its times; kombu stores
    [message, exchange, routing key]."""
    try:
        message, _, routing_key = json.loads(raw)
        return routing_key, _times(message)
    except (ValueError, TypeError):
        return None, (None, None)


def _missing(job_id: str) -> DeadLetter:
    raise KeyError(job_id)
