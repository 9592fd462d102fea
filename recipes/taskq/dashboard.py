"""A small read-only web dashboard behind HTTP basic auth: queue depth, in-progress and dead jobs,
the dead letters themselves, and the workers, for libraries without a maintained dashboard
(Dramatiq, Arq). Serve it with any ASGI server:

    TASKQ_APP=myapp.tasks:broker MONITOR_USER=… MONITOR_PASSWORD=… uvicorn --factory taskq.dashboard:from_env

It shows what the ops CLI's read verbs report (the same Operations), so the two never disagree.
Read-only on purpose: requeueing stays a deliberate `taskq dlq requeue`. Everything shown comes
from Redis, where anyone with the password can write: it is escaped. Needs starlette.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import os
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from taskq.cli import Operations, load_target, operations_for, when
from taskq.errors import ConfigError


class BasicAuth:
    """Every request needs the credentials; compared in constant time."""

    def __init__(self, app: ASGIApp, user: str, password: str) -> None:
        self.app = app
        self.expected = f"{user}:{password}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.authorized(Request(scope).headers.get("authorization", "")):
            denied = Response(
                "credentials required", status_code=401, headers={"WWW-Authenticate": 'Basic realm="taskq"'}
            )
            await denied(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self.expected)


def depth(ops: Operations) -> dict[str, Any]:
    """The queue depth, and "backlog": jobs waiting plus jobs running, what an autoscaler should
    size the workers by (the Helm charts' KEDA trigger reads the same from the exporter)."""
    counts = ops.depth()
    return {**counts, "backlog": sum(counts["queues"].values()) + counts["in_progress"]}


def overview(ops: Operations) -> dict[str, Any]:
    data = {
        "depth": ops.depth(),
        "dead_letters": [letter.summary() for letter in ops.dead_letters()],
        "workers": ops.workers(),
    }
    if ops.metrics is not None:  # the exporter's numbers, so that the two never disagree
        snapshot = ops.metrics()
        data["queues"] = {name: asdict(queue) for name, queue in snapshot.queues.items()}
        data["schedules"] = {
            name: {"last_fire": last, "interval_s": interval}
            for name, (last, interval) in snapshot.schedules.items()
        }
    return data


def table(headings: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body or '<tr><td colspan=9>none</td></tr>'}</table>"


def render(title: str, data: dict[str, Any]) -> str:
    depth = data["depth"]
    if "queues" in data:
        heading = ["queue", "waiting", "oldest waiting (s)", "delayed", "in progress", "stuck", "dead"]
        queues = [
            [
                name,
                q["depth"],
                f"{q['oldest_age_s']:.0f}",
                q["delayed"],
                q["in_progress"],
                q["stuck"],
                q["dead_letters"],
            ]
            for name, q in data["queues"].items()
        ]
    else:
        heading = ["queue", "jobs"]
        queues = [[name, size] for name, size in depth["queues"].items()]
        queues += [["(in progress)", depth["in_progress"]], ["(dead)", depth["dead"]]]
    schedules = [
        [name, when(entry["last_fire"]), f"{entry['interval_s']:.0f}"]
        for name, entry in data.get("schedules", {}).items()
    ]
    workers = [[w["worker"], when(w["last_seen"]), w["in_progress"]] for w in data["workers"]]
    dead = [[d["id"], d["task"], d["key"], when(d["failed_at"]), d["error"]] for d in data["dead_letters"]]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>{html.escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}th{{background:#f4f4f4}}</style></head>
<body><h1>{html.escape(title)}</h1>
<h2>Queues</h2>{table(heading, queues)}
<h2>Workers</h2>{table(["worker", "last seen (UTC)", "in progress"], workers)}
<h2>Schedules</h2>{table(["entry", "last fired (UTC)", "every (s)"], schedules)}
<h2>Dead letters</h2>{table(["id", "task", "key", "failed at (UTC)", "last error"], dead)}
<p>Read-only. Requeue with <code>taskq dlq requeue ID</code>.
JSON: <a href="api/overview">api/overview</a>, <a href="api/depth">api/depth</a>.
Refreshes every 5 s.</p></body></html>"""


def create_dashboard(ops: Operations, user: str, password: str, title: str | None = None) -> ASGIApp:
    """The dashboard over ops, every request needing user and password."""
    if not user or not password:
        raise ConfigError("the dashboard needs a user and a password (MONITOR_USER, MONITOR_PASSWORD)")
    title = title or f"{ops.library}: Task Queue Toolkit"

    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse(render(title, await run_in_threadpool(overview, ops)))

    async def api(_: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(overview, ops))

    async def api_depth(_: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(depth, ops))

    app = Starlette(routes=[Route("/", page), Route("/api/overview", api), Route("/api/depth", api_depth)])
    return BasicAuth(app, user, password)


def from_env() -> ASGIApp:
    """The dashboard for the object TASKQ_APP names, with MONITOR_USER and MONITOR_PASSWORD."""
    target = os.environ.get("TASKQ_APP")
    if not target:
        raise ConfigError("set TASKQ_APP to your app's object (module:attribute) for the dashboard")
    ops = operations_for(load_target(target))
    return create_dashboard(ops, os.environ.get("MONITOR_USER", ""), os.environ.get("MONITOR_PASSWORD", ""))
