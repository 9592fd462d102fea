"""The shop's web app: it sends messages, the worker handles them."""

from __future__ import annotations

from flask import Flask, abort, request

from shop import tasks

app = Flask(__name__)
ACTORS = {actor.actor_name: actor for actor in (tasks.send_receipt, tasks.sync_stock, tasks.import_feed)}


@app.get("/healthz")
def healthz() -> dict:
    return {"ok": True}


@app.post("/jobs/<function>")
def enqueue(function: str) -> dict:
    if function not in ACTORS:
        abort(404)
    body = request.get_json()
    message = ACTORS[function].send(*body.get("args", []), **body.get("kwargs", {}))
    return {"id": message.message_id}
