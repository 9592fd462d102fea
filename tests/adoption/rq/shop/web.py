"""The shop's web app: it enqueues, the worker runs."""

from __future__ import annotations

from flask import Flask, abort, request

from shop.jobs import jobs

app = Flask(__name__)


@app.get("/healthz")
def healthz() -> dict:
    return {"ok": True}


@app.post("/jobs/<function>")
def enqueue(function: str) -> dict:
    func = jobs.registered.get(f"shop.jobs.{function}")
    if func is None:
        abort(404)
    body = request.get_json()
    job = jobs.enqueue(func, *body.get("args", []), **body.get("kwargs", {}))
    return {"id": job.id}
