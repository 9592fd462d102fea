"""The Task Queue Toolkit: production settings, retries with dead letters, idempotency, a
scheduler that fires each slot once, heartbeats and graceful shutdown, applied to an app's own
Celery app, RQ queues, Dramatiq broker or Arq worker settings.

Importing `taskq` imports no job library and reads nothing. The core (settings, retry policy,
idempotency, dead letters, schedules, heartbeats, the `taskq` CLI) needs only the standard
library; each library's adapter is its own subpackage: `taskq.celery`, `taskq.rq`,
`taskq.dramatiq`, `taskq.arq`.
"""

from taskq._version import __version__

__all__ = ["__version__"]
