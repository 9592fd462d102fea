"""The stack contract's HTTP API as a FastAPI app, asyncio throughout: Arq's pool (through the
toolkit, msgpack) and psycopg's async pool on the event loop. `uvicorn demo_arq.api:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import redis.asyncio
from demo_common import psp
from demo_common.contract import KEY_PATTERN, MAX_BODY_BYTES, JobRequest, job_call
from fastapi import FastAPI, Path, Request, Response
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

import taskq.arq
from demo_arq import db
from demo_arq.body_limit import BodySizeLimit
from demo_arq.worker import settings
from taskq.idempotency import external_key

Key = Annotated[str, Path(pattern=KEY_PATTERN)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.db = AsyncConnectionPool(
        settings.require_database_url(), min_size=1, max_size=4, open=False, kwargs={"autocommit": True}
    )
    await app.state.db.open(wait=False)
    app.state.broker = redis.asyncio.Redis.from_url(
        settings.require_redis_url(), socket_timeout=2, socket_connect_timeout=2
    )
    app.state.arq = await taskq.arq.create_pool(settings.require_redis_url())
    try:
        yield
    finally:
        await app.state.arq.aclose()
        await app.state.broker.aclose()
        await app.state.db.close()


app = FastAPI(title="Task Queue Toolkit demo (Arq)", lifespan=lifespan)
app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)


class JobAccepted(BaseModel):
    id: str
    key: str


@app.post("/jobs", status_code=202, response_model=JobAccepted)
async def create_job(job: JobRequest, request: Request) -> JobAccepted | JSONResponse:
    key, task, kwargs = job_call(job)
    try:
        enqueued = await request.app.state.arq.enqueue_job(task, **kwargs)
    except (RedisError, OSError) as error:
        detail = f"the broker is unavailable, nothing was enqueued: {error}"
        return JSONResponse(status_code=503, content={"detail": detail})
    return JobAccepted(id=enqueued.job_id, key=key)


@app.get("/effects/{key}")
async def get_effects(key: Key, request: Request) -> dict:
    async with request.app.state.db.connection() as conn:
        return await db.effects_of(conn, key)


@app.get("/charges/{key}")
async def get_charge(key: Key, request: Request) -> dict:
    """The key's attempts and orders, and what the payment provider saw for its external key: read
    in that order, so that an order read here was paid for before the provider is asked."""
    async with request.app.state.db.connection() as conn:
        counts = await db.charge_counts(conn, key)
    seen = await run_in_threadpool(psp.counts, external_key("charge", key))
    return {
        "key": key,
        "attempts": counts["attempts"],
        "psp_requests": seen["requests"],
        "psp_charges": seen["charges"],
        "orders": counts["orders"],
    }


@app.get("/ticks")
async def get_ticks(request: Request) -> dict:
    async with request.app.state.db.connection() as conn:
        return await db.tick_counts(conn)


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@app.get("/readyz")
async def readyz(request: Request, response: Response) -> dict:
    checks = {}
    try:
        await request.app.state.broker.ping()
        checks["broker"] = "ok"
    except RedisError as error:
        checks["broker"] = f"unavailable: {error}"
    try:
        async with request.app.state.db.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 (any failure means not ready)
        checks["database"] = f"unavailable: {error}"
    if any(value != "ok" for value in checks.values()):
        response.status_code = 503
    return checks
