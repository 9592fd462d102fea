"""python -m taskq.rq worker MODULE:JOBS [--queues a,b] [--simple]
python -m taskq.rq scheduler MODULE:JOBS

The worker runs until SIGTERM (the running job finishes, exit 0); the scheduler sends the Jobs'
schedule, each slot once however many schedulers run."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from taskq.cli import load_target
from taskq.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taskq.rq")
    parser.add_argument("command", choices=["worker", "scheduler"])
    parser.add_argument("jobs", help="module:attribute of your taskq.rq.Jobs")
    parser.add_argument("--queues", help="comma-separated, in priority order (default: all of them)")
    parser.add_argument("--simple", action="store_true", help="run jobs in the worker process (no fork)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        jobs = load_target(args.jobs)
        if args.command == "worker":
            jobs.work(args.queues.split(",") if args.queues else None, simple=args.simple)
            return 0
        loop = jobs.scheduler()
        signal.signal(signal.SIGTERM, lambda *_: loop.stop())
        signal.signal(signal.SIGINT, lambda *_: loop.stop())
        loop.run()
        return 0
    except ConfigError as error:
        print(f"taskq: configuration error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
