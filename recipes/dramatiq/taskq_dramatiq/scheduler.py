"""The periodic `tick`: APScheduler (Dramatiq has no scheduler), safe to run twice.

APScheduler fires at each wall-clock multiple of TICK_INTERVAL_S. It keeps no shared state, so
two schedulers would both send every tick: each firing claims its slot (`floor(now / interval)`)
in Redis with SET NX first, and only the one that got the claim sends `tick(slot)`. Both
schedulers stay live, and a restarted one cannot fire a slot that already ran.
"""

from __future__ import annotations

import logging
import math
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from taskq_dramatiq.broker import broker, settings
from taskq_dramatiq.tasks import tick

HEARTBEAT_FILE = Path("/tmp/beat-heartbeat")
log = logging.getLogger("taskq_dramatiq.scheduler")


def slot_of(timestamp: float, interval: float) -> int:
    return math.floor(timestamp / interval)


def fire_tick() -> None:
    interval = settings.tick_interval_s
    slot = slot_of(time.time(), interval)
    # Kept for ten slots: long enough that no scheduler, however late, sends it again.
    if broker.client.set(f"taskq:beat:tick:{slot}", socket.gethostname(), nx=True, ex=interval * 10):
        tick.send(slot=slot)
        log.info("sent tick for slot %s", slot)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)  # two lines per run
    interval = settings.tick_interval_s
    scheduler = BlockingScheduler(timezone=UTC)
    # The next slot boundary: firings land just after each boundary, inside the slot they claim.
    first = datetime.fromtimestamp((slot_of(time.time(), interval) + 1) * interval, UTC)
    scheduler.add_job(
        fire_tick,
        IntervalTrigger(seconds=interval, start_date=first),
        id="tick",
        coalesce=True,  # after a stall, one firing, not one per missed slot
        misfire_grace_time=max(1, interval // 2),
        max_instances=1,
    )
    scheduler.add_job(
        HEARTBEAT_FILE.touch, IntervalTrigger(seconds=5), id="heartbeat", next_run_time=datetime.now(UTC)
    )
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    log.info("ticking every %s s", interval)
    scheduler.start()


if __name__ == "__main__":
    main()
