"""The middleware the toolkit's broker installs: the retry policy, and what a worker process
needs (stop at once on SIGTERM, poll often, a heartbeat file, the final error in dead letters)."""

from __future__ import annotations

import signal
import traceback
from typing import Any

from dramatiq.common import q_name
from dramatiq.middleware import Middleware, Retries, SkipMessage
from dramatiq.middleware.time_limit import TimeLimitExceeded

from taskq.context import _task_name
from taskq.heartbeat import Heartbeat
from taskq.idempotency import identity_of
from taskq.presence import Presence, count_outcome
from taskq.retry import RetryLater, RetryPolicy
from taskq.settings import DRAMATIQ_POLL_MS, DramatiqSettings

__all__ = ["PutBackWhenStopping", "ToolkitRetries", "WorkerProcess"]

IDENTITY_OPTION = "taskq_idempotency"


class ToolkitRetries(Retries):
    """Dramatiq's Retries, with the toolkit's policy for every actor: transient errors (the
    policy's classification, and the time limit) retry at most max_retries times, with backoff
    and jitter; anything else is dead-lettered at once. RetryLater (an idempotency key held by a
    live run) sends the message again after its wait, spending no retry. An actor's own
    `max_retries` option still wins."""

    def __init__(self, policy: RetryPolicy) -> None:
        super().__init__(max_retries=policy.max_retries, min_backoff=round(policy.base_s * 1000))
        self.policy = policy

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        if exception is None:
            count_outcome(broker.client, q_name(message.queue_name), "succeeded")
            return
        if isinstance(exception, RetryLater):
            broker.enqueue(message, delay=round(self.policy.defer_s(exception.retry_after_s) * 1000))
            count_outcome(broker.client, q_name(message.queue_name), "retried")
            return
        if (identity := identity_of(exception)) is not None:
            message.options[IDENTITY_OPTION] = list(identity)
        actor = broker.get_actor(message.actor_name)
        retries = message.options.setdefault("retries", 0)
        message.options["traceback"] = traceback.format_exc(limit=30)
        max_retries = message.options.get("max_retries", actor.options.get("max_retries", self.max_retries))
        transient = isinstance(exception, TimeLimitExceeded) or self.policy.is_transient(exception)
        if not transient or retries >= max_retries:
            message.fail()  # a dead letter
            count_outcome(broker.client, q_name(message.queue_name), "dead")
            return
        message.options["retries"] = retries + 1
        broker.enqueue(message, delay=round(self.policy.delay_s(retries) * 1000))
        count_outcome(broker.client, q_name(message.queue_name), "retried")


class WorkerProcess(Middleware):
    """What each worker process of the `dramatiq` command (or django_dramatiq's `rundramatiq`)
    gets, installed by hooks that both run:

    - SIGTERM and SIGHUP first set the broker's stop flag, then call Dramatiq's own handler
      (which only sets a flag it reads once a second): the consumers fetch nothing from then on.
    - The consumers poll every DRAMATIQ_POLL_MS when idle (Dramatiq's default backs off to 1 s).
    - The heartbeat file, touched at every broker call (at least every poll), and the process's
      entry among the live ones (taskq.presence), with its threads as its capacity.
    - The running actor's name, for the idempotency helper's default scope.
    - A message that fails for good is dead-lettered with its final error and idempotency key
      (the broker stores the message as it was last enqueued, with the previous attempt's error).
    """

    def __init__(self, settings: DramatiqSettings, heartbeat: Heartbeat | None) -> None:
        self.settings = settings
        self.heartbeat = heartbeat
        self._tokens: dict[str, Any] = {}

    def after_process_boot(self, broker) -> None:
        broker.heartbeat = self.heartbeat
        for signum in (signal.SIGTERM, signal.SIGHUP):
            dramatiq_handler = signal.getsignal(signum)
            if not callable(dramatiq_handler):
                continue

            def stop_taking_jobs(signum, frame, dramatiq_handler=dramatiq_handler) -> None:
                broker.stopping.set()
                dramatiq_handler(signum, frame)

            signal.signal(signum, stop_taking_jobs)

    def before_worker_boot(self, broker, worker) -> None:
        self.settings.check()
        worker.worker_timeout = DRAMATIQ_POLL_MS
        broker.presence = Presence("worker", worker.worker_threads)

    def after_worker_shutdown(self, broker, worker) -> None:
        if getattr(broker, "presence", None) is not None:
            broker.presence.withdraw(broker.client)

    def before_process_message(self, broker, message) -> None:
        self._tokens[message.message_id] = _task_name.set(message.actor_name)

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        if (token := self._tokens.pop(message.message_id, None)) is not None:
            _task_name.reset(token)

    after_skip_message = after_process_message

    def before_nack(self, broker, message) -> None:
        redis_message_id = message.options.get("redis_message_id")
        if redis_message_id is None:
            return
        key = f"{broker.namespace}:{message.queue_name}.msgs"
        broker.client.hset(key, redis_message_id, message.encode())


class PutBackWhenStopping(Middleware):
    """A message that reaches a worker thread after its process was told to stop goes back to its
    queue, untouched, instead of starting: a stopping worker only finishes what it runs.

    Such messages were fetched before the signal (prefetched while every thread was busy). The
    requeue takes the message out of this process's unacked set, so the ack that Dramatiq sends
    after SkipMessage finds nothing to delete and the message stays queued. It must be the last
    middleware: every other before_process_message has run, and its after_skip_message undoes it.
    """

    def before_process_message(self, broker, message) -> None:
        if getattr(broker, "stopping", None) is not None and broker.stopping.is_set():
            broker.do_requeue(message.queue_name, message.options["redis_message_id"])
            raise SkipMessage(f"{message.message_id} put back in {message.queue_name!r}: stopping")
