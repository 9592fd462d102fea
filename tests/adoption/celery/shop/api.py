"""The shop's web app: it sends tasks, the worker runs them."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

from shop.celery_app import app as celery_app

app = FastAPI()


class Job(BaseModel):
    args: list = []
    kwargs: dict = {}


@app.get("/healthz")
def healthz() -> dict:
    return {"ok": True}


@app.post("/jobs/{function}")
def enqueue(function: str, job: Job) -> dict:
    result = celery_app.send_task(f"shop.tasks.{function}", args=job.args, kwargs=job.kwargs)
    return {"id": result.id}
