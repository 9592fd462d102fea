"""The demo HTTP API, the same for every stack: enqueue jobs, read their effects, check health.

A demo builds it with `create_app`, passing the one thing that differs by library: how a job is
enqueued. The app is asyncio throughout (psycopg's async pool, redis.asyncio); a library whose
enqueue blocks (Celery, RQ, Dramatiq) passes a plain function, which runs in the thread pool, and
Arq passes a coroutine function, awaited on the event loop.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import UTC, datetime
from typing import Annotated, Literal

import redis
import redis.asyncio
from fastapi import FastAPI, Path, Response
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from demo_common import db, psp
from demo_common.body_limit import BodySizeLimit
from taskq.idempotency import external_key

MAX_BODY_BYTES = 64 * 1024
KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,200}$"
Key = Annotated[str, Field(pattern=KEY_PATTERN)]


class DemoJob(BaseModel):
    # strict: "0.5" is not a number and 1.0 is not a count; extra="forbid": a misspelt field is
    # an error, not a silently ignored default.
    model_config = ConfigDict(extra="forbid", strict=True)
    task: Literal["demo"]
    key: Key | None = None
    sleep_s: float = Field(0.5, ge=0, le=24 * 3600)
    fail_times: int = Field(0, ge=0, le=100)


class SendReportJob(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    task: Literal["send_report"]
    user_id: int = Field(gt=0)


class ChargeJob(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    task: Literal["charge"]
    key: Key
    amount_cents: int = Field(gt=0, le=10**9)
    sleep_s: float = Field(0.5, ge=0, le=24 * 3600)
    fail_times: int = Field(0, ge=0, le=100)


JobRequest = Annotated[DemoJob | SendReportJob | ChargeJob, Field(discriminator="task")]


class JobAccepted(BaseModel):
    id: str
    key: str


# enqueue(task name, keyword arguments) -> job id; a plain function, or a coroutine function
Enqueue = Callable[[str, dict], str] | Callable[[str, dict], Awaitable[str]]


def create_app(
    title: str,
    enqueue: Enqueue,
    broker_errors: tuple[type[Exception], ...],
    database_url: str,
    redis_url: str,
    resources: Callable[[], AbstractAsyncContextManager] | None = None,
) -> FastAPI:
    """resources: what the demo's enqueue needs open while the app serves (Arq's pool)."""
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=4, open=False, kwargs={"autocommit": True})
    broker = redis.asyncio.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)

    if inspect.iscoroutinefunction(enqueue):
        send = enqueue
    else:

        async def send(task: str, kwargs: dict) -> str:
            return await run_in_threadpool(enqueue, task, kwargs)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await pool.open(wait=False)
        async with resources() if resources else nullcontext():
            yield
        await pool.close()
        await broker.aclose()

    app = FastAPI(title=title, lifespan=lifespan)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)

    @app.post("/jobs", status_code=202, response_model=JobAccepted)
    async def create_job(job: JobRequest) -> JobAccepted | JSONResponse:
        if isinstance(job, DemoJob):
            key = job.key or uuid.uuid4().hex
            task, kwargs = "demo", {"key": key, "sleep_s": job.sleep_s, "fail_times": job.fail_times}
        elif isinstance(job, ChargeJob):
            key, task = job.key, "charge"
            kwargs = {
                "key": key,
                "amount_cents": job.amount_cents,
                "sleep_s": job.sleep_s,
                "fail_times": job.fail_times,
            }
        else:
            # One report per user per day: asking twice on the same day sends one.
            key = f"send_report:{job.user_id}:{datetime.now(UTC).date().isoformat()}"
            task, kwargs = "send_report", {"user_id": job.user_id, "key": key}
        try:
            job_id = await send(task, kwargs)
        except broker_errors as error:
            detail = f"the broker is unavailable, nothing was enqueued: {error}"
            return JSONResponse(status_code=503, content={"detail": detail})
        return JobAccepted(id=job_id, key=key)

    @app.get("/effects/{key}")
    async def get_effects(key: Annotated[str, Path(pattern=KEY_PATTERN)]) -> dict:
        async with pool.connection() as conn:
            return await db.effects_of(conn, key)

    @app.get("/charges/{key}")
    async def get_charge(key: Annotated[str, Path(pattern=KEY_PATTERN)]) -> dict:
        """The key's attempts and orders, and what the payment provider saw for its external key."""
        async with pool.connection() as conn:
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
    async def get_ticks() -> dict:
        async with pool.connection() as conn:
            return await db.tick_counts(conn)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict:
        checks = {}
        try:
            await broker.ping()
            checks["broker"] = "ok"
        except redis.RedisError as error:
            checks["broker"] = f"unavailable: {error}"
        try:
            async with pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception as error:  # noqa: BLE001 (any failure means not ready)
            checks["database"] = f"unavailable: {error}"
        if any(value != "ok" for value in checks.values()):
            response.status_code = 503
        return checks

    return app
