"""One retry policy for the four libraries: which errors are transient, and how long to wait.

At most `max_retries` retries (3: four attempts per enqueue), each after an exponential backoff
with jitter (base, 2 × base, 4 × base, … each × [1, 1 + jitter)), then the job is a dead letter.

What counts as transient: the exceptions a job raises when a network peer or a database is away
for a moment. The defaults name the connection errors and timeouts of redis-py, psycopg 2 and 3,
asyncpg, SQLAlchemy, Django, requests and httpx, and are matched by class without importing any
of those libraries (a class can only be raised once its module is imported). An app adds its own
with `RetryPolicy(transient=(...))`, or raises `Transient` / `Permanent` to decide per call.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_TRANSIENT",
    "Permanent",
    "RetryLater",
    "RetryPolicy",
    "Transient",
]


class Transient(Exception):  # noqa: N818 (read as `raise Transient(...)`)
    """Raise (or subclass) to ask for a retry with backoff: the next attempt may succeed."""


class Permanent(Exception):  # noqa: N818
    """Raise (or subclass) for a failure no retry can fix: the job becomes a dead letter at once."""


class RetryLater(Exception):  # noqa: N818
    """The job cannot run now, through no fault of its own (its key is held by another live run):
    the adapters send it again after `retry_after_s`, without spending a retry."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# (module, class name) pairs, looked up in sys.modules when an error is classified: a module that
# was never imported cannot have raised. Subclasses count (requests' ConnectTimeout is a Timeout).
DEFAULT_TRANSIENT: tuple[tuple[str, str], ...] = (
    ("builtins", "ConnectionError"),  # ConnectionRefusedError, ConnectionResetError, BrokenPipeError
    ("builtins", "TimeoutError"),  # socket.timeout, asyncio.TimeoutError
    ("redis.exceptions", "ConnectionError"),  # BusyLoadingError is one
    ("redis.exceptions", "TimeoutError"),
    ("psycopg", "OperationalError"),  # connection lost, deadlock, serialization failure, admin shutdown
    ("psycopg_pool", "PoolTimeout"),
    ("psycopg2", "OperationalError"),
    ("asyncpg.exceptions", "ConnectionDoesNotExistError"),
    ("asyncpg.exceptions", "CannotConnectNowError"),
    ("asyncpg.exceptions", "TooManyConnectionsError"),
    ("asyncpg.exceptions", "SerializationError"),
    ("asyncpg.exceptions", "DeadlockDetectedError"),
    ("sqlalchemy.exc", "OperationalError"),  # SQLAlchemy's wrapper of the driver's
    ("sqlalchemy.exc", "DisconnectionError"),
    ("sqlalchemy.exc", "TimeoutError"),  # the pool's
    ("django.db.utils", "OperationalError"),
    ("requests.exceptions", "ConnectionError"),
    ("requests.exceptions", "Timeout"),
    ("httpx", "TransportError"),  # timeouts, network and protocol errors
    ("kombu.exceptions", "OperationalError"),
)

# Status codes of an HTTP error response worth another try (rate limited, or the peer is away).
TRANSIENT_HTTP_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def _resolve(names: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    found = []
    for module_name, class_name in names:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _http_status(error: BaseException) -> int | None:
    """The status of a requests or httpx HTTP error response (raise_for_status), else None."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if type(error).__name__ in ("HTTPError", "HTTPStatusError") and isinstance(status, int):
        return status
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """max_retries retries after the first attempt; delays base_s × 2ⁿ × [1, 1 + jitter).

    transient: extra exception classes worth a retry, on top of the defaults (or instead of
    them, with `include_defaults=False`). Transient and RetryLater always count; Permanent and
    its subclasses never do, whatever they also subclass.
    """

    max_retries: int = 3
    base_s: float = 1.0
    jitter: float = 0.5
    transient: tuple[type[BaseException], ...] = ()
    include_defaults: bool = True
    default_names: tuple[tuple[str, str], ...] = field(default=DEFAULT_TRANSIENT, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if not self.base_s > 0:
            raise ValueError(f"base_s must be above 0, got {self.base_s}")

    def is_transient(self, error: BaseException) -> bool:
        if isinstance(error, Permanent):
            return False
        if isinstance(error, Transient | RetryLater):
            return True
        if isinstance(error, self.transient):
            return True
        if not self.include_defaults:
            return False
        if isinstance(error, _resolve(self.default_names)):
            return True
        return _http_status(error) in TRANSIENT_HTTP_STATUS

    def delay_s(self, retries_done: int, jitter: float | None = None) -> float:
        """The wait before retry number retries_done + 1. Jitter spreads retries of jobs that
        failed together; capping it keeps every delay longer than the one before, unlike a full
        jitter (Celery's `retry_jitter`, which draws from [0, delay] and can retry at once)."""
        if jitter is None:
            jitter = random.random()
        return self.base_s * 2**retries_done * (1 + jitter * self.jitter)

    @property
    def max_delay_s(self) -> float:
        """The longest wait before any retry: the last one, with the most jitter."""
        return self.delay_s(max(self.max_retries - 1, 0), jitter=1.0)

    def defer_s(self, wait_s: float) -> float:
        """How long a job told to RetryLater waits: until the other run's lease ends, but never
        longer than a retry would (a long wait in a broker can outlast its redelivery timeout),
        and never 0 (a job held by a live run would spin)."""
        return min(max(wait_s, 0.2), self.max_delay_s)
