"""The toolkit for an app's Dramatiq broker (Dramatiq 2.x on Redis).

Plain Dramatiq:

    broker = taskq.dramatiq.RedisBroker(url=os.environ["REDIS_URL"])
    dramatiq.set_broker(broker)            # before the actors are declared

django_dramatiq (the broker class is built from your settings, in each process):

    DRAMATIQ_BROKER = {
        "BROKER": "taskq.dramatiq.RedisBroker",
        "OPTIONS": {"url": REDIS_URL},
        "MIDDLEWARE": ["django_dramatiq.middleware.DbConnectionsMiddleware"],
    }

Run the workers with `python -m taskq.dramatiq worker myapp.tasks` (the `dramatiq` command with
--worker-shutdown-timeout, --processes and --threads derived from the settings), or with
`dramatiq` / `manage.py rundramatiq` and those options given by hand: the middleware below is
installed by the broker itself, so both work.

Whatever middleware list it is given (Dramatiq's defaults when none), the broker makes sure of:
- TimeLimit at JOB_TIME_LIMIT_S (Dramatiq's default: 10 minutes), AgeLimit, ShutdownNotifications,
  CurrentMessage; Callbacks and Pipelines are left out of the defaults (they let a message name
  the next actor to run), but kept if you list them.
- The retry policy for every actor (Dramatiq's default: 20 retries over about a week): at most 3
  retries of transient errors and the time limit, with backoff and jitter, then a dead letter
  (kept a year; Dramatiq's default is 7 days). RetryLater defers without spending a retry.
- Heartbeat timeout max(60 s, T + 30 s) (a running message is never handed to a second worker),
  maintenance every 5 s per queue and process (a killed worker's messages come back within
  about 70 s; stock Dramatiq's 0.1 % coin toss took minutes to tens of minutes).
- In worker processes: SIGTERM takes effect at once, a 200 ms idle poll, a heartbeat file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.middleware import (
    AgeLimit,
    CurrentMessage,
    Middleware,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from taskq.dramatiq.broker import ToolkitRedisBroker
from taskq.dramatiq.middleware import PutBackWhenStopping, ToolkitRetries, WorkerProcess
from taskq.errors import ConfigError
from taskq.heartbeat import DEFAULT_WORKER_FILE, Heartbeat
from taskq.settings import DRAMATIQ_DEAD_MESSAGE_TTL_S, DramatiqSettings

__all__ = ["RedisBroker", "operations"]

MINIMUM_VERSION = (2, 0)


def _version() -> tuple[int, ...]:
    return tuple(int(part) for part in dramatiq.__version__.split(".")[:2] if part.isdigit())


def toolkit_middleware(given: list[Middleware] | None, settings: DramatiqSettings) -> list[Middleware]:
    """The given middleware (Dramatiq's defaults less Callbacks and Pipelines when None), with
    the toolkit's time limit, retries, current message and worker-process hooks in place."""
    if given is None:
        middleware: list[Middleware] = [AgeLimit(), ShutdownNotifications()]
    else:
        middleware = [m for m in given if not isinstance(m, TimeLimit | Retries | CurrentMessage)]
        if not any(isinstance(m, AgeLimit) for m in middleware):
            middleware.insert(0, AgeLimit())
        if not any(isinstance(m, ShutdownNotifications) for m in middleware):
            middleware.append(ShutdownNotifications())
    # Hooks run in list order and after_* in reverse: CurrentMessage must come before the retries,
    # which read the current message, and the stop guard last of all.
    return [
        *middleware,
        TimeLimit(time_limit=settings.time_limit_ms),
        CurrentMessage(),
        ToolkitRetries(settings.retry),
        WorkerProcess(settings, Heartbeat(DEFAULT_WORKER_FILE)),
        PutBackWhenStopping(),
    ]


class RedisBroker(ToolkitRedisBroker):
    """Dramatiq's RedisBroker with the toolkit's settings (see the module). url: REDIS_URL when
    not given; settings: DramatiqSettings.from_env() when not given (read when the broker is made)."""

    def __init__(
        self,
        *,
        url: str | None = None,
        middleware: list[Middleware] | None = None,
        settings: DramatiqSettings | None = None,
        heartbeat_file: str | Path = DEFAULT_WORKER_FILE,
        **options: Any,
    ) -> None:
        if _version() < MINIMUM_VERSION:
            raise ConfigError(f"taskq.dramatiq needs Dramatiq 2.0 or later, found {dramatiq.__version__}")
        self.settings = settings or DramatiqSettings.from_env()
        stack = toolkit_middleware(middleware, self.settings)
        for m in stack:
            if isinstance(m, WorkerProcess):
                m.heartbeat = Heartbeat(heartbeat_file)
        if "client" not in options:
            options["url"] = url or self.settings.require_redis_url()
        options.setdefault("heartbeat_timeout", self.settings.heartbeat_timeout_s * 1000)
        options.setdefault("dead_message_ttl", DRAMATIQ_DEAD_MESSAGE_TTL_S * 1000)
        # Every broker call is a short Lua script (the consumers poll; nothing blocks), so a read
        # timeout only ever fires on a dead connection.
        if "client" not in options:
            options.setdefault("socket_connect_timeout", 5)
            options.setdefault("socket_timeout", 10)
            options.setdefault("health_check_interval", 30)
        super().__init__(middleware=stack, **options)

    def __taskq_operations__(self):
        from taskq.dramatiq.ops import operations

        return operations(self)


def operations(broker: dramatiq.Broker):
    from taskq.dramatiq.ops import operations as make

    return make(broker)
