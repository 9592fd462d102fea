"""Which job is running in this thread or task, as the adapters see it: the idempotency helper's
scope defaults to its task name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["current_task_name", "running"]

_task_name: ContextVar[str | None] = ContextVar("taskq_task_name", default=None)


def current_task_name() -> str | None:
    return _task_name.get()


@contextmanager
def running(task_name: str) -> Iterator[None]:
    token = _task_name.set(task_name)
    try:
        yield
    finally:
        _task_name.reset(token)
