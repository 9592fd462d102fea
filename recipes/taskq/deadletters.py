"""The dead-letter model every adapter reports in, and the Redis hash that Celery and Arq keep
their dead letters in (RQ and Dramatiq have dead-letter stores of their own, which the adapters
read into the same model).

A dead letter is a job that failed its last attempt, or failed in a way no retry can fix. It is
kept (a year, or until requeued), never dropped, and can be listed and requeued with `taskq dlq`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

__all__ = ["DEAD_LETTERS_KEY", "DeadLetter", "RedisDeadLetters"]

DEAD_LETTERS_KEY = "taskq:dead-letters"


@dataclass
class DeadLetter:
    id: str
    task: str | None
    error: str | None
    failed_at: float | None
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    queue: str | None = None
    # The idempotency key the job's last run was for (scope defaults to the task name), or, for
    # a job that used none, its `key` argument if it has one.
    key: str | None = None
    scope: str | None = None

    def __post_init__(self) -> None:
        if self.key is None and isinstance(self.kwargs, dict) and isinstance(self.kwargs.get("key"), str):
            self.key = self.kwargs["key"]

    @property
    def idempotency(self) -> tuple[str, str] | None:
        """(scope, key) to look up in the idempotency records, if the job named one."""
        if self.key is None or (self.scope is None and self.task is None):
            return None
        return (self.scope or self.task, self.key)

    def summary(self) -> dict[str, Any]:
        """What `taskq dlq list --json` prints for it."""
        return {
            "id": self.id,
            "key": self.key,
            "task": self.task,
            "queue": self.queue,
            "error": self.error,
            "failed_at": self.failed_at,
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, raw: str | bytes) -> DeadLetter:
        data = json.loads(raw)
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def error_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class HashClient(Protocol):
    def hset(self, name: str, key: str, value: str) -> Any: ...
    def hget(self, name: str, key: str) -> Any: ...
    def hvals(self, name: str) -> Any: ...
    def hlen(self, name: str) -> Any: ...
    def hdel(self, name: str, *keys: str) -> Any: ...


class RedisDeadLetters:
    """A Redis hash, job id -> DeadLetter as JSON, in the broker's Redis (which runs with the
    append-only file on). Keyed by job id, so a failure reported twice is kept once."""

    def __init__(self, client: HashClient, key: str = DEAD_LETTERS_KEY) -> None:
        self.client = client
        self.key = key

    def add(self, letter: DeadLetter) -> bool:
        """Keep the letter; True when its job was not already among the dead letters."""
        if letter.failed_at is None:
            letter.failed_at = time.time()
        return bool(self.client.hset(self.key, letter.id, letter.to_json()))

    def get(self, job_id: str) -> DeadLetter | None:
        raw = self.client.hget(self.key, job_id)
        return None if raw is None else DeadLetter.from_json(raw)

    def all(self) -> list[DeadLetter]:
        letters = [DeadLetter.from_json(raw) for raw in self.client.hvals(self.key)]
        return sorted(letters, key=lambda letter: letter.failed_at or 0)

    def count(self) -> int:
        return int(self.client.hlen(self.key))

    def remove(self, job_id: str) -> bool:
        return bool(self.client.hdel(self.key, job_id))
