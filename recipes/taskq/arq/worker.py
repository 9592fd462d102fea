"""Arq's Worker, which also keeps failed jobs, mirrors its health key into a file, and rides out a
Redis outage.

- Arq keeps a failed job's result for keep_result seconds and then forgets the job. Here a job
  that fails for good is first written to the dead letters (a Redis hash, kept until requeued),
  then finished as Arq does: a crash between the two leaves the job both dead and queued (it runs
  again; make its effect idempotent), never lost.
- Each time it writes its health key, it touches the heartbeat file: a container healthcheck reads
  the file, with no Redis round-trip.
- Each job is in a sorted set of running jobs while it runs, from which the exporter and `taskq
  depth` count them without scanning the keyspace. Two round trips per job: the entry, then its
  removal pipelined with the job's outcome count. Round trips are what one event loop pays for:
  three of them (removal and count apart) cost a median 12% of the demo's throughput. A worker killed
  mid-job leaves its entries behind, with their start time: they stop counting as running when
  Arq would run the job again, and the worker drops entries a day old.
- Arq's poll loop raises when Redis is unreachable, and the worker exits (to fail again at start
  until Redis is back). Here it logs, waits a second and polls again; it writes no health
  meanwhile, so a long outage shows as unhealthy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from arq.worker import Worker
from redis.exceptions import RedisError

from taskq.arq import deserialize, display_name, running_key
from taskq.deadletters import DEAD_LETTERS_KEY, DeadLetter
from taskq.heartbeat import Heartbeat
from taskq.presence import Presence, outcomes_key, record_fire_async

__all__ = ["ToolkitWorker", "dead_letter"]

REDIS_RETRY_S = 1
STALE_RUNNING_ENTRY_MS = 86_400_000
log = logging.getLogger("taskq.arq")


def dead_letter(job_id: str, result_data: bytes | None, queue: str) -> DeadLetter | None:
    """The dead letter for a finished job's result, or None when it succeeded."""
    result = deserialize(result_data) if result_data else {}
    if result.get("s"):
        return None
    outcome = result.get("r")
    identity = outcome.get("taskq_idempotency") if isinstance(outcome, dict) else None
    error = outcome.get("error") if isinstance(outcome, dict) else outcome
    return DeadLetter(
        id=job_id,
        task=result.get("f", "<unknown>"),
        error=str(error or "the job's result could not be recorded"),
        failed_at=(result.get("ft") or 0) / 1000 or None,
        args=list(result.get("a") or []),
        kwargs=dict(result.get("k") or {}),
        queue=queue,
        scope=identity[0] if identity else None,
        key=identity[1] if identity else None,
    )


class ToolkitWorker(Worker):
    def __init__(self, *, heartbeat_file: Path, **options: Any) -> None:
        super().__init__(**options)
        self.heartbeat = Heartbeat(heartbeat_file, min_interval_s=0)
        # max_jobs=0 is the scheduler: a process that runs the cron and no job
        self.presence = Presence("worker" if self.max_jobs else "scheduler", self.max_jobs)
        # job id -> how its attempt ended, noted by finish_job, sent when run_job ends
        self.outcomes: dict[str, str] = {}

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

    async def run_job(self, job_id: str, score: int) -> None:
        running = running_key(self.queue_name)
        try:
            await self.pool.zadd(running, {job_id: int(time.time() * 1000)})
        except (RedisError, OSError) as error:
            log.warning("job %s is not listed as running: %s", job_id, error)
        try:
            await super().run_job(job_id, score)
        finally:
            outcome = self.outcomes.pop(job_id, None)
            try:
                async with self.pool.pipeline(transaction=False) as pipe:
                    pipe.zrem(running, job_id)
                    if outcome is not None:
                        pipe.hincrby(outcomes_key(display_name(self.queue_name)), outcome, 1)
                    await pipe.execute()
            except (RedisError, OSError) as error:  # it stops counting as running when it lapses
                log.warning("job %s still listed as running, %s not counted: %s", job_id, outcome, error)

    async def record_health(self) -> None:
        last = self._last_health_check
        await super().record_health()
        if self._last_health_check != last:
            self.heartbeat.beat()
            await self.presence.announce_async(self.pool, busy=sum(not t.done() for t in self.tasks.values()))
            cutoff = int(time.time() * 1000) - STALE_RUNNING_ENTRY_MS
            await self.pool.zremrangebyscore(running_key(self.queue_name), "-inf", cutoff)

    async def run_cron(self, n: Any, delay: float, num_windows: int = 2) -> None:
        due = {job.name: job.next_run for job in self.cron_jobs}
        await super().run_cron(n, delay, num_windows)
        for job in self.cron_jobs:
            if due[job.name] is not None and job.next_run != due[job.name]:
                slot, following = due[job.name].timestamp(), job.next_run.timestamp()
                await record_fire_async(self.pool, job.name, slot, following)

    async def close(self) -> None:
        if self._pool is not None:
            await self.presence.withdraw_async(self.pool)
        await super().close()

    async def finish_job(self, job_id: str, finish: bool, result_data: bytes | None, *args: Any) -> None:
        # Arq finishes a job (finish=True) when it is done or out of tries; else it runs again.
        dead = finish and await self.keep_if_dead(job_id, result_data)
        await super().finish_job(job_id, finish, result_data, *args)
        self.outcomes[job_id] = "dead" if dead else "succeeded" if finish else "retried"

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        dead = await self.keep_if_dead(job_id, result_data)
        await super().finish_failed_job(job_id, result_data)
        if dead:
            self.outcomes[job_id] = "dead"

    async def keep_if_dead(self, job_id: str, result_data: bytes | None) -> bool:
        if (letter := dead_letter(job_id, result_data, self.queue_name)) is None:
            return False
        await self.pool.hset(DEAD_LETTERS_KEY, job_id, letter.to_json())
        log.warning("job %s is dead: kept in %s", job_id, DEAD_LETTERS_KEY)
        return True
