"""The stack contract's HTTP API as a Flask app: enqueue jobs, read their effects, check health.
Served by gunicorn (`gunicorn demo_rq.web:app`)."""

from __future__ import annotations

import redis
from demo_common import psp
from demo_common.contract import KEY_PATTERN, MAX_BODY_BYTES, job_call, parse_job
from flask import Flask, jsonify, request
from sqlalchemy import func, select, text
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import BaseConverter

from demo_rq.db import Attempt, Effect, Order, Session, Tick
from demo_rq.jobs import charge, demo, jobs, send_report
from taskq.idempotency import external_key

TASKS = {"demo": demo, "send_report": send_report, "charge": charge}


class KeyConverter(BaseConverter):
    """A job key in a URL, as the contract allows it."""

    regex = KEY_PATTERN.strip("^$")


app = Flask(__name__)
app.url_map.converters["key"] = KeyConverter
# Werkzeug refuses a longer body, declared or chunked, before the view reads it.
app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
broker = redis.Redis.from_url(jobs.settings.require_redis_url(), socket_timeout=2, socket_connect_timeout=2)


@app.errorhandler(RequestEntityTooLarge)
def too_large(_: RequestEntityTooLarge):
    return jsonify(detail=f"request body is larger than {MAX_BODY_BYTES} bytes; nothing was enqueued"), 413


@app.post("/jobs")
def create_job():
    job, errors = parse_job(request.get_data())
    if job is None:
        return jsonify(detail=errors), 422
    key, task, kwargs = job_call(job)
    try:
        job_id = jobs.enqueue(TASKS[task], **kwargs).id
    except redis.RedisError as error:
        return jsonify(detail=f"the broker is unavailable, nothing was enqueued: {error}"), 503
    return jsonify(id=job_id, key=key), 202


def count(model, key: str) -> int:
    with Session() as session:
        return session.scalar(select(func.count()).select_from(model).where(model.key == key))


@app.get("/effects/<key:key>")
def effects(key: str):
    return jsonify(key=key, attempts=count(Attempt, key), effects=count(Effect, key))


@app.get("/charges/<key:key>")
def charges(key: str):
    """The key's attempts and orders, and what the payment provider saw for its external key: read
    in that order, so that an order read here was paid for before the provider is asked."""
    attempts, orders = count(Attempt, key), count(Order, key)
    seen = psp.counts(external_key("charge", key))
    return jsonify(
        key=key,
        attempts=attempts,
        psp_requests=seen["requests"],
        psp_charges=seen["charges"],
        orders=orders,
    )


@app.get("/ticks")
def ticks():
    with Session() as session:
        slots, runs = session.execute(select(func.count(), func.coalesce(func.sum(Tick.runs), 0))).one()
    return jsonify(slots=slots, runs=runs)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.get("/readyz")
def readyz():
    checks = {}
    try:
        broker.ping()
        checks["broker"] = "ok"
    except redis.RedisError as error:
        checks["broker"] = f"unavailable: {error}"
    try:
        with Session() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 (any failure means not ready)
        checks["database"] = f"unavailable: {error}"
    return jsonify(checks), 200 if all(v == "ok" for v in checks.values()) else 503
