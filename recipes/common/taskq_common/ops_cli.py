"""`taskq`: the ops CLI, with the same verbs and output in every recipe of the toolkit.

    taskq depth [--json]                 queued, in-progress and dead jobs
    taskq dlq list [--json]              the dead jobs
    taskq dlq requeue (--all | ID ...)   send dead jobs again with a fresh set of attempts
    taskq migrate                        create the demo's tables (idempotent)

A recipe's `cli.py` supplies what differs by library (how to count, list and requeue) as an
Operations; everything else is here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Operations:
    library: str
    # {"queues": {"default": 3}, "dead": 1, "in_progress": 2}
    depth: Callable[[], dict[str, Any]]
    # [{"id", "key", "task", "error", "failed_at"}, ...], oldest first
    dead_letters: Callable[[], list[dict[str, Any]]]
    # requeue these ids (all when None), return how many; KeyError for an unknown id
    requeue: Callable[[list[str] | None], int]
    postgres_dsn: Callable[[], str]


def depth(ops: Operations, args: argparse.Namespace) -> int:
    report = ops.depth()
    if args.json:
        print(json.dumps(report))
        return 0
    for name, size in report["queues"].items():
        print(f"queue {name}: {size}")
    print(f"in progress: {report['in_progress']}")
    print(f"dead: {report['dead']}")
    return 0


def dlq_list(ops: Operations, args: argparse.Namespace) -> int:
    entries = ops.dead_letters()
    if args.json:
        print(json.dumps(entries))
        return 0
    for entry in entries:
        failed_at = datetime.fromtimestamp(entry["failed_at"] or 0, UTC).isoformat(timespec="seconds")
        print(f"{entry['id']}  {entry['task']}  key={entry['key']}  {failed_at}  {entry['error']}")
    print(f"{len(entries)} dead job(s)")
    return 0


def dlq_requeue(ops: Operations, args: argparse.Namespace) -> int:
    try:
        count = ops.requeue(None if args.all else args.ids)
    except KeyError as missing:
        print(f"taskq: no dead job with id {missing}", file=sys.stderr)
        return 1
    print(f"requeued {count}")
    return 0


def migrate(ops: Operations, _: argparse.Namespace) -> int:
    from taskq_common import db  # psycopg only for this verb

    db.migrate(db.connection(ops.postgres_dsn()))
    print("schema up to date")
    return 0


def parser(library: str) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="taskq", description=f"Operate the {library} job queue.")
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


def main(ops: Operations, argv: list[str] | None = None) -> int:
    args = parser(ops.library).parse_args(argv)
    return args.run(ops, args)
