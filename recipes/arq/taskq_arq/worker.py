"""The Arq worker: `python -m taskq_arq.worker`.

Run this way rather than as `arq taskq_arq.worker.WorkerSettings` because the worker is Arq's
Worker with two additions (below), and every option comes from settings.py, where the numbers
that couple each other are derived and checked.
"""

from __future__ import annotations

import asyncio
import json
import logging.config
import socket
from datetime import UTC
from pathlib import Path
from typing import Any

from arq.logs import default_log_config
from arq.worker import Worker, func
from psycopg_pool import AsyncConnectionPool
from redis.exceptions import RedisError

from taskq_arq import settings as settings_module
from taskq_arq import tasks
from taskq_arq.queue import (
    DEAD_LETTERS,
    HEALTH_CHECK_KEY_PREFIX,
    QUEUE,
    deserialize,
    redis_settings,
    serialize,
    settings,
)

# Each process's own health key. Arq's default is one key per queue, shared by every worker and
# refreshed hourly: another worker's graceful stop deletes it, and it outlives a crash by an hour.
HEALTH_CHECK_KEY = f"{HEALTH_CHECK_KEY_PREFIX}{socket.gethostname()}"
REDIS_RETRY_S = 1
log = logging.getLogger("taskq_arq.worker")


def dead_letter(job_id: str, result_data: bytes | None) -> str | None:
    """The dead-letter entry for a finished job's result, or None when it succeeded."""
    result = deserialize(result_data) if result_data else {}
    if result.get("s"):
        return None
    return json.dumps(
        {
            "id": job_id,
            "function": result.get("f", "<unknown>"),
            "args": result.get("a", []),
            "kwargs": result.get("k", {}),
            "error": str(result.get("r", "the job's result could not be recorded")),
            "tries": result.get("t"),
            "failed_at": (result.get("ft") or 0) / 1000,
        },
        default=str,
    )


class TaskqWorker(Worker):
    """Arq's Worker, which also keeps failed jobs, mirrors its health key into a file, and rides
    out a Redis outage.

    - Arq keeps a failed job's result for keep_result seconds and then forgets the job. Here a
      job that fails for good is first written to the dead letters (a Redis hash, kept until
      requeued), then finished as Arq does: a crash between the two leaves the job both dead
      and queued (it runs again; its effect is idempotent), never lost.
    - Each time it writes its health key, it touches heartbeat_file: the container's
      healthcheck reads the file, with no Redis round-trip.
    - Arq's poll loop raises when Redis is unreachable, and the worker exits (to fail again at
      start until Redis is back). Here it logs, waits a second and polls again; it writes no
      health meanwhile, so a long outage shows as unhealthy.
    """

    def __init__(self, *, heartbeat_file: Path, **options: Any) -> None:
        super().__init__(**options)
        self.heartbeat_file = heartbeat_file

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as error:
            log.warning("cannot reach Redis, polling again in %s s: %s", REDIS_RETRY_S, error)
            await asyncio.sleep(REDIS_RETRY_S)

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        try:
            await super().start_jobs(job_ids)
        except (RedisError, OSError):
            # Arq holds one slot (semaphore and job counter) while it claims a job in Redis, and
            # does not give it back when Redis fails mid-claim: without this, each such failure
            # would leave the worker one job short, until it takes none.
            self.job_counter -= 1
            self.sem.release()
            raise

    async def record_health(self) -> None:
        last = self._last_health_check
        await super().record_health()
        if self._last_health_check != last:
            self.heartbeat_file.touch()

    async def finish_job(self, job_id: str, finish: bool, result_data: bytes | None, *args: Any) -> None:
        if finish:
            await self.keep_if_dead(job_id, result_data)
        await super().finish_job(job_id, finish, result_data, *args)

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        await self.keep_if_dead(job_id, result_data)
        await super().finish_failed_job(job_id, result_data)

    async def keep_if_dead(self, job_id: str, result_data: bytes | None) -> None:
        if (entry := dead_letter(job_id, result_data)) is not None:
            await self.pool.hset(DEAD_LETTERS, job_id, entry)
            log.warning("job %s is dead: kept in %s", job_id, DEAD_LETTERS)


async def open_database(ctx: dict[str, Any]) -> None:
    ctx["db"] = AsyncConnectionPool(
        settings.postgres_dsn, min_size=1, max_size=10, open=False, kwargs={"autocommit": True}
    )
    await ctx["db"].open(wait=True, timeout=30)


async def close_database(ctx: dict[str, Any]) -> None:
    await ctx["db"].close()


def options(**overrides: Any) -> dict[str, Any]:
    """Arq Worker options shared by the worker and the scheduler."""
    return {
        "queue_name": QUEUE,
        "redis_settings": redis_settings(),
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "max_tries": settings_module.MAX_TRIES,
        # The recipe's own time limit (tasks.attempt) ends a job first; this is the backstop,
        # and sets the in-progress key's lifetime (+10 s) after which a killed worker's job runs again.
        "job_timeout": settings.arq_job_timeout_s,
        # A graceful stop takes no new job and waits this long for the running ones.
        "job_completion_wait": settings.job_completion_wait_s,
        "max_jobs": settings.max_jobs,
        "poll_delay": settings_module.POLL_DELAY_S,
        "queue_read_limit": settings_module.QUEUE_READ_LIMIT,
        "health_check_key": HEALTH_CHECK_KEY,
        "health_check_interval": settings_module.HEALTH_CHECK_INTERVAL_S,
        "keep_result": 3600,
        "timezone": UTC,
        **overrides,
    }


def main() -> None:
    logging.config.dictConfig(default_log_config(verbose=False))
    worker = TaskqWorker(
        heartbeat_file=Path("/tmp/worker-heartbeat"),
        functions=[func(tasks.demo), func(tasks.send_report), func(tasks.tick, name="cron:tick")],
        on_startup=open_database,
        on_shutdown=close_database,
        **options(),
    )
    worker.run()


if __name__ == "__main__":
    main()
