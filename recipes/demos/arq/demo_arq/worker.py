"""The demo's Arq jobs and its WorkerSettings, made by the toolkit: positional arguments, the time
limit and retry policy, dead letters, msgpack, and a cron tick in a scheduler of its own.

`demo` records its effect with its own idempotent write; `send_report` and `charge` go through the
toolkit's idempotency helper, which makes their effects happen once however often they run."""

from __future__ import annotations

import asyncio
import math
import os
from typing import Any

from demo_common import psp
from demo_common.work import fail_if_asked
from psycopg_pool import AsyncConnectionPool

from demo_arq import db
from taskq.arq import cron, due_time, worker_settings
from taskq.idempotency import AsyncIdempotency
from taskq.idempotency.psycopg import AsyncPsycopgStore
from taskq.schedule import Every
from taskq.settings import ArqSettings

settings = ArqSettings.from_env()
TICK_INTERVAL_S = int(os.environ.get("TICK_INTERVAL_S", "60"))


async def startup(ctx: dict[str, Any]) -> None:
    ctx["db"] = AsyncConnectionPool(
        settings.require_database_url(), min_size=1, max_size=10, open=False, kwargs={"autocommit": True}
    )
    await ctx["db"].open(wait=True, timeout=30)
    ctx["idempotency"] = AsyncIdempotency(AsyncPsycopgStore(ctx["db"]), lease_s=settings.lease_s)


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["db"].close()


async def record_attempt(ctx: dict[str, Any], key: str) -> int:
    async with ctx["db"].connection() as conn:
        return await db.record_attempt_async(conn, key, ctx["job_id"])


async def demo(ctx: dict[str, Any], key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    fail_if_asked(await record_attempt(ctx, key), fail_times, key)
    await asyncio.sleep(sleep_s)
    async with ctx["db"].connection() as conn:
        await db.record_effect_async(conn, key, ctx["job_id"])


async def send_report(ctx: dict[str, Any], user_id: int, key: str) -> None:
    await record_attempt(ctx, key)
    async with ctx["idempotency"].run(key, args={"user_id": user_id}) as run:
        if run.done:
            return
        await asyncio.sleep(0.05)  # stands in for rendering and mailing user_id's report
        async with run.transaction() as conn:
            await db.record_effect_async(conn, key, ctx["job_id"])


async def charge(
    ctx: dict[str, Any], key: str, amount_cents: int, sleep_s: float = 0.5, fail_times: int = 0
) -> dict:
    attempt = await record_attempt(ctx, key)
    async with ctx["idempotency"].run(key, args={"amount_cents": amount_cents}) as run:
        if run.done:
            return run.result
        payment = await asyncio.to_thread(psp.charge, amount_cents, run.external_key())
        fail_if_asked(attempt, fail_times, key)
        await asyncio.sleep(sleep_s)
        async with run.transaction() as conn:
            await db.insert_order_async(conn, key, payment["id"], amount_cents)
            run.result = {"charge": payment["id"]}
        return run.result


async def tick(ctx: dict[str, Any]) -> None:
    slot = math.floor(due_time(ctx).timestamp() / TICK_INTERVAL_S) * TICK_INTERVAL_S
    async with ctx["db"].connection() as conn:
        await db.record_tick_async(conn, slot)


async def digest(ctx: dict[str, Any]) -> None:
    """Stands in for a periodic job of the app's own (a digest mail, a cleanup): once a minute."""
    async with ctx["db"].connection() as conn:
        await db.record_digest_async(conn)


WorkerSettings = worker_settings(
    functions=[demo, send_report, charge],
    cron_jobs=[cron(tick, Every(TICK_INTERVAL_S), name="cron:tick"), cron(digest, "* * * * *")],
    on_startup=startup,
    on_shutdown=shutdown,
    settings=settings,
)
