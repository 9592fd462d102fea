"""The shop's Arq worker: receipts, stock syncs and an hourly report, with the toolkit applied
(taskq.arq.worker_settings: time limit, retries, dead letters, msgpack, a scheduler of its own)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from psycopg_pool import AsyncConnectionPool

import taskq.arq
from taskq.idempotency import AsyncIdempotency
from taskq.idempotency.psycopg import AsyncPsycopgStore
from taskq.settings import ArqSettings

REPORT_EVERY_S = int(os.environ.get("SHOP_REPORT_EVERY_S", "3600"))


async def startup(ctx: dict[str, Any]) -> None:
    ctx["db"] = AsyncConnectionPool(os.environ["DATABASE_URL"], open=False, kwargs={"autocommit": True})
    await ctx["db"].open(wait=True, timeout=30)
    # A held key's lease outlasts the time limit (the toolkit derives it from JOB_TIME_LIMIT_S).
    ctx["once"] = AsyncIdempotency(AsyncPsycopgStore(ctx["db"]), lease_s=ArqSettings.from_env().lease_s)


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["db"].close()


async def log_run(ctx: dict[str, Any], task: str, key: str) -> int:
    async with ctx["db"].connection() as conn:
        await conn.execute("INSERT INTO runs (task, key) VALUES (%s, %s)", (task, key))
        count = await conn.execute("SELECT count(*) FROM runs WHERE task = %s AND key = %s", (task, key))
        row = await count.fetchone()
        return row[0]


async def send_receipt(ctx: dict[str, Any], order_id: str, seconds: float = 0.0) -> None:
    """Mails the receipt of an order: once, however often the job runs."""
    await log_run(ctx, "send_receipt", order_id)
    async with ctx["once"].run(f"receipt:{order_id}") as run:
        if run.done:
            return
        await asyncio.sleep(seconds)  # rendering and mailing
        async with run.transaction() as conn:
            await conn.execute("INSERT INTO receipts (order_id) VALUES (%s)", (order_id,))


async def sync_stock(ctx: dict[str, Any], sku: str, fail_times: int = 0) -> None:
    """Calls the warehouse, which times out now and then."""
    if await log_run(ctx, "sync_stock", sku) <= fail_times:
        raise ConnectionError("warehouse timed out")


async def import_feed(ctx: dict[str, Any], url: str) -> None:
    """A feed that cannot be parsed: a bug, not a blip."""
    await log_run(ctx, "import_feed", url)
    raise ValueError(f"cannot parse {url}")


async def hourly_report(ctx: dict[str, Any]) -> None:
    slot = int(taskq.arq.due_time(ctx).timestamp())
    async with ctx["db"].connection() as conn:
        await conn.execute("INSERT INTO reports (slot) VALUES (%s)", (slot,))


WorkerSettings = taskq.arq.worker_settings(
    functions=[send_receipt, sync_stock, import_feed],
    cron_jobs=[taskq.arq.cron(hourly_report, REPORT_EVERY_S)],
    on_startup=startup,
    on_shutdown=shutdown,
)
