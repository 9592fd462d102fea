"""The shop's web app: it enqueues, the worker runs."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel

import taskq.arq


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.arq = await taskq.arq.create_pool()  # msgpack, REDIS_URL
    yield
    await app.state.arq.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict:
    return {"ok": True}


class Job(BaseModel):
    args: list = []
    kwargs: dict = {}


@app.post("/jobs/{function}")
async def enqueue(function: str, job: Job) -> dict:
    job = await app.state.arq.enqueue_job(function, *job.args, **job.kwargs)
    return {"id": job.job_id}
