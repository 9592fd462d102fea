"""A heartbeat file, touched from a worker's or scheduler's main loop, for a liveness probe.

A container healthcheck or Kubernetes exec probe checks the file's age
(`find FILE -newermt "30 seconds ago"`): no broker round-trip, no Python started, and a busy
worker still beats (the loop turns while jobs run), so only a worker whose loop has stopped
turning is restarted.
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["DEFAULT_SCHEDULER_FILE", "DEFAULT_WORKER_FILE", "Heartbeat"]

DEFAULT_WORKER_FILE = Path("/tmp/worker-heartbeat")
DEFAULT_SCHEDULER_FILE = Path("/tmp/beat-heartbeat")


class Heartbeat:
    """beat() touches the file at most once per min_interval_s; stop() removes it."""

    def __init__(self, path: str | Path, min_interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.min_interval_s = min_interval_s
        self._next = 0.0

    def beat(self) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.min_interval_s
            self.path.touch()

    def stop(self) -> None:
        self.path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"Heartbeat({str(self.path)!r})"
