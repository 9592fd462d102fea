"""The demo HTTP API, the same for every stack: enqueue jobs, read their effects, check health.

A recipe builds it with `create_app`, passing the one thing that differs by library: how a job
is enqueued. Endpoints are plain `def`: enqueueing and psycopg's queries block, so FastAPI runs
them in its thread pool rather than on the event loop.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Literal

import redis
from fastapi import FastAPI, Path, Response
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field

from taskq_common import db
from taskq_common.body_limit import BodySizeLimit
from taskq_common.config import Common

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


JobRequest = Annotated[DemoJob | SendReportJob, Field(discriminator="task")]


class JobAccepted(BaseModel):
    id: str
    key: str


# enqueue(task name, keyword arguments) -> job id
Enqueue = Callable[[str, dict], str]


def create_app(
    title: str, enqueue: Enqueue, broker_errors: tuple[type[Exception], ...], settings: Common
) -> FastAPI:
    pool = ConnectionPool(
        settings.postgres_dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}
    )
    broker = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        pool.open(wait=False)
        yield
        pool.close()

    app = FastAPI(title=title, lifespan=lifespan)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)

    @app.post("/jobs", status_code=202, response_model=JobAccepted)
    def create_job(job: JobRequest) -> JobAccepted | JSONResponse:
        if isinstance(job, DemoJob):
            key = job.key or uuid.uuid4().hex
            task, kwargs = "demo", {"key": key, "sleep_s": job.sleep_s, "fail_times": job.fail_times}
        else:
            # One report per user per day: asking twice on the same day sends one.
            key = f"send_report:{job.user_id}:{datetime.now(UTC).date().isoformat()}"
            task, kwargs = "send_report", {"user_id": job.user_id, "key": key}
        try:
            job_id = enqueue(task, kwargs)
        except broker_errors as error:
            detail = f"the broker is unavailable, nothing was enqueued: {error}"
            return JSONResponse(status_code=503, content={"detail": detail})
        return JobAccepted(id=job_id, key=key)

    @app.get("/effects/{key}")
    def get_effects(key: Annotated[str, Path(pattern=KEY_PATTERN)]) -> dict:
        with pool.connection() as conn:
            return db.effects_of(conn, key)

    @app.get("/ticks")
    def get_ticks() -> dict:
        with pool.connection() as conn:
            return db.tick_counts(conn)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(response: Response) -> dict:
        checks = {}
        try:
            broker.ping()
            checks["broker"] = "ok"
        except redis.RedisError as error:
            checks["broker"] = f"unavailable: {error}"
        try:
            with pool.connection(timeout=2) as conn:
                conn.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception as error:  # noqa: BLE001 (any failure means not ready)
            checks["database"] = f"unavailable: {error}"
        if any(value != "ok" for value in checks.values()):
            response.status_code = 503
        return checks

    return app
