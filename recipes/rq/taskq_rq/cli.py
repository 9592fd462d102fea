"""`taskq`: the ops CLI, with the same verbs in every recipe of the toolkit.

taskq depth [--json]                 queued, in-progress and dead jobs
taskq dlq list [--json]              the dead jobs
taskq dlq requeue (--all | ID ...)   send dead jobs again with a fresh set of attempts
taskq migrate                        create the demo's tables (idempotent)
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime


def depth(args: argparse.Namespace) -> int:
    from taskq_rq.worker import QUEUE, queue

    # Raw counts: RQ's registry .count runs its cleanup (abandoned jobs' retries) as a side effect.
    default = queue()
    redis = default.connection
    report = {
        "queues": {QUEUE: int(redis.llen(default.key))},
        "dead": int(redis.zcard(default.failed_job_registry.key)),
        # Running now; retries waiting for their interval are scheduled, not in progress.
        "in_progress": int(redis.zcard(default.started_job_registry.key)),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for name, size in report["queues"].items():
            print(f"queue {name}: {size}")
        print(f"in progress: {report['in_progress']}")
        print(f"dead: {report['dead']}")
    return 0


def dlq_list(args: argparse.Namespace) -> int:
    from taskq_rq import dead_letters

    entries = dead_letters.list_all()
    if args.json:
        print(json.dumps(entries))
        return 0
    for entry in entries:
        failed_at = datetime.fromtimestamp(entry["failed_at"] or 0, UTC).isoformat(timespec="seconds")
        print(f"{entry['id']}  {entry['task']}  key={entry['key']}  {failed_at}  {entry['error']}")
    print(f"{len(entries)} dead job(s)")
    return 0


def dlq_requeue(args: argparse.Namespace) -> int:
    from taskq_rq import dead_letters

    try:
        count = dead_letters.requeue(None if args.all else args.ids)
    except KeyError as missing:
        print(f"taskq: no dead job with id {missing}", file=sys.stderr)
        return 1
    print(f"requeued {count}")
    return 0


def migrate(_: argparse.Namespace) -> int:
    from taskq_rq import db
    from taskq_rq.worker import settings

    db.migrate(db.connection(settings.postgres_dsn))
    print("schema up to date")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="taskq", description="Operate the RQ job queue.")
    verbs = root.add_subparsers(dest="verb", required=True)

    depth_cmd = verbs.add_parser("depth", help="queued, in-progress and dead jobs")
    depth_cmd.add_argument("--json", action="store_true")
    depth_cmd.set_defaults(run=depth)

    dlq = verbs.add_parser("dlq", help="the dead-letter store").add_subparsers(dest="dlq_verb", required=True)
    list_cmd = dlq.add_parser("list", help="list dead jobs")
    list_cmd.add_argument("--json", action="store_true")
    list_cmd.set_defaults(run=dlq_list)
    requeue_cmd = dlq.add_parser("requeue", help="send dead jobs again")
    which = requeue_cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead job")
    which.add_argument("ids", nargs="*", default=[], metavar="ID", help="dead job ids")
    requeue_cmd.set_defaults(run=dlq_requeue)

    verbs.add_parser("migrate", help="create the demo's tables").set_defaults(run=migrate)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)
