"""The monitor: a read-only dashboard (taskq_common.dashboard) over Dramatiq's Redis keys.

dramatiq_dashboard, Dramatiq's own, was last released in 2022 (0.4.0) and requires
dramatiq < 2.0 and redis < 5: pip will not install it next to Dramatiq 2.2. Nothing maintained
replaces it, so the stack serves this one, with `uvicorn taskq_dramatiq.monitor:app`.
"""

from __future__ import annotations

from typing import Any

from taskq_common.dashboard import create_dashboard
from taskq_dramatiq.broker import broker
from taskq_dramatiq.cli import in_progress_by_worker, operations


def workers() -> list[dict[str, Any]]:
    """Every worker process with a heartbeat (dead ones stay until maintenance drops them)."""
    in_progress = in_progress_by_worker()
    beats = broker.client.zrange(f"{broker.namespace}:__heartbeats__", 0, -1, withscores=True)
    return [
        {
            "worker": worker.decode(),
            "last_seen": seen / 1000,
            "in_progress": in_progress.get(worker.decode(), 0),
        }
        for worker, seen in beats
    ]


app = create_dashboard("Dramatiq: Task Queue Toolkit", operations(), workers)
