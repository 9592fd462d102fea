#!/usr/bin/env python3
"""Job throughput of one running stack, measured from outside through the contract's API.

Stops the worker, enqueues N jobs (sleep_s=0) over HTTP, starts the worker again, and reads from
Postgres when the first and the last effect were recorded: the drain rate is (N - 1) / (last -
first), free of worker start-up time and of the enqueue rate. `demo` jobs record an attempt and
an idempotent effect; `charge` jobs go through the toolkit's idempotency helper (a claim, a call
to the stand-in payment provider, an order row and the marker in one transaction).

    scripts/bench.py --lib celery --jobs 2000 [--task charge]   (or: make bench LIB=celery N=2000 TASK=charge)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def compose(lib: str, *args: str) -> str:
    command = ["docker", "compose", "--project-directory", str(REPO / "compose" / lib), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def psql(lib: str, sql: str) -> str:
    return compose(
        lib, "exec", "-T", "postgres", "psql", "-U", "taskq", "-d", "taskq", "-At", "-c", sql
    ).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", default="celery")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--task", choices=["demo", "charge"], default="demo")
    args = parser.parse_args()

    app_url = "http://" + compose(args.lib, "port", "app", "8000").strip()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"

    def post(i: int) -> None:
        job = {"task": args.task, "key": f"{prefix}-{i}", "sleep_s": 0}
        if args.task == "charge":
            job["amount_cents"] = 100
        body = json.dumps(job).encode()
        request = urllib.request.Request(
            f"{app_url}/jobs", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202

    compose(args.lib, "stop", "worker")
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(post, range(args.jobs)))
        enqueue_s = time.monotonic() - started
    finally:
        compose(args.lib, "start", "worker")

    # Where each kind of job leaves its effect, and when.
    table, column = ("effects", "recorded_at") if args.task == "demo" else ("orders", "created_at")
    deadline = time.monotonic() + 600
    done = 0
    while done < args.jobs:
        if time.monotonic() > deadline:
            print(f"only {done} of {args.jobs} jobs done after 600 s", file=sys.stderr)
            return 1
        time.sleep(1)
        done = int(psql(args.lib, f"SELECT count(*) FROM {table} WHERE key LIKE '{prefix}-%'"))
    span = float(
        psql(
            args.lib,
            f"SELECT extract(epoch FROM max({column}) - min({column})) "
            f"FROM {table} WHERE key LIKE '{prefix}-%'",
        )
    )
    print(
        f"{args.lib}: {args.jobs} {args.task} jobs enqueued over HTTP at {args.jobs / enqueue_s:.0f}/s; "
        f"one worker drained them at {(args.jobs - 1) / span:.0f} jobs/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
