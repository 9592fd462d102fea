"""The monitor Arq lacks: a read-only dashboard (taskq_common.dashboard) over Arq's keys.

No maintained Arq dashboard exists. This one shows the queue, the jobs in progress, the dead
letters with their last error, and every worker and scheduler by its own health key. Served with
`uvicorn taskq_arq.monitor:app`, behind basic auth.
"""

from __future__ import annotations

import time
from typing import Any

from taskq_arq.cli import operations
from taskq_arq.queue import HEALTH_CHECK_KEY_PREFIX, sync_client
from taskq_arq.settings import HEALTH_CHECK_INTERVAL_S
from taskq_common.dashboard import create_dashboard


def workers() -> list[dict[str, Any]]:
    """Processes whose health key is live (it lapses HEALTH_CHECK_INTERVAL_S + 1 s after their
    last write), with the number of jobs each was running then."""
    r = sync_client()
    now_ms = time.time() * 1000
    found = []
    for key in r.scan_iter(match=f"{HEALTH_CHECK_KEY_PREFIX}*", count=1000):
        report, ttl_ms = r.get(key), r.pttl(key)
        if report is None or ttl_ms < 0:
            continue
        # "Nov-24 10:00:00 j_complete=3 j_failed=0 j_retried=1 j_ongoing=2 queued=5"
        counts = dict(part.split("=", 1) for part in report.decode().split() if "=" in part)
        written_ms = now_ms - ((HEALTH_CHECK_INTERVAL_S + 1) * 1000 - ttl_ms)
        found.append(
            {
                "worker": key.decode().removeprefix(HEALTH_CHECK_KEY_PREFIX),
                "last_seen": written_ms / 1000,
                "in_progress": int(counts.get("j_ongoing", 0)),
            }
        )
    return sorted(found, key=lambda worker: worker["worker"])


app = create_dashboard("Arq: Task Queue Toolkit", operations(), workers)
