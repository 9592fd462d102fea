"""`taskq`: the ops CLI, with the same verbs and output for every library.

    taskq [--app TARGET] depth [--json]              waiting, in-progress and dead jobs, per queue
    taskq [--app TARGET] dlq list [--json]           the dead jobs
    taskq [--app TARGET] dlq requeue (--all | ID …)  send dead jobs again with a fresh set of attempts
    taskq [--app TARGET] exporter [--port 9808]      serve the queues' metrics to Prometheus
    taskq migrate                                    create the idempotency table in DATABASE_URL
    taskq schema                                     print that table's SQL (for Alembic, psql)
    taskq version

TARGET (or the TASKQ_APP environment variable) names the app's own object, as `module:attribute`:
its Celery app, its Dramatiq broker, its `taskq.rq.Jobs`, or its Arq WorkerSettings made by
`taskq.arq.worker_settings`. The verbs read the queues that object declares.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from taskq import __version__
from taskq.deadletters import DeadLetter
from taskq.errors import ConfigError
from taskq.metrics import DEFAULT_PORT, Snapshot
from taskq.settings import Settings

__all__ = ["Operations", "load_target", "main", "operations_for"]


@dataclass(frozen=True)
class Operations:
    """What a library adapter supplies to the CLI and the dashboard."""

    library: str
    # {"queues": {"default": 3}, "dead": 1, "in_progress": 2}
    depth: Callable[[], dict[str, Any]]
    # oldest first
    dead_letters: Callable[[], list[DeadLetter]]
    # requeue these ids (all when None) and return them; KeyError for an unknown id
    requeue: Callable[[list[str] | None], list[DeadLetter]]
    # [{"worker": id, "last_seen": epoch seconds, "in_progress": n}, ...]
    workers: Callable[[], list[dict[str, Any]]]
    settings: Settings
    # the uniform queue metrics the exporter serves (taskq.metrics), read with cheap commands only
    metrics: Callable[[], Snapshot] | None = None


def load_target(spec: str) -> Any:
    """The object named by 'module:attribute' (or 'module.attribute')."""
    module_name, sep, attribute = spec.partition(":")
    if not sep:
        module_name, _, attribute = spec.rpartition(".")
    if not module_name or not attribute:
        raise ConfigError(f"--app / TASKQ_APP must be module:attribute, got {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not (module_name + ".").startswith(error.name + "."):
            raise  # a module the app's own module imports is missing: its own traceback says which
        raise ConfigError(
            f"--app / TASKQ_APP {spec!r}: no module {error.name!r} on the path; run taskq from your "
            "project's folder or set PYTHONPATH"
        ) from None
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


# (library, the module its class lives in, the class) for objects the toolkit recognises by type.
_BY_TYPE = (("celery", "celery", "Celery"), ("dramatiq", "dramatiq", "Broker"))


def operations_for(target: Any) -> Operations:
    hook = getattr(target, "__taskq_operations__", None)
    if callable(hook):
        return hook()
    for library, module_name, class_name in _BY_TYPE:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(target, getattr(module, class_name)):
            return importlib.import_module(f"taskq.{library}").operations(target)
    raise ConfigError(
        f"--app names a {type(target).__name__}, which taskq does not know: name your Celery app, your "
        "Dramatiq broker, your taskq.rq.Jobs, or your taskq.arq.worker_settings(...) WorkerSettings"
    )


def done_keys(settings: Settings, letters: list[DeadLetter]) -> set[tuple[str, str]]:
    """The (scope, key) pairs among these dead letters' that an idempotency record says are done;
    empty when no database is configured."""
    pairs = sorted({pair for letter in letters if (pair := letter.idempotency)})
    if not pairs or not settings.database_url:
        return set()
    from taskq.idempotency import Idempotency
    from taskq.idempotency.psycopg import PsycopgStore

    return Idempotency(PsycopgStore(settings.database_url), lease_s=1).done_keys(pairs)


def when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else "-"


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
    letters = ops.dead_letters()
    if args.json:
        print(json.dumps([letter.summary() for letter in letters]))
        return 0
    for letter in letters:
        print(f"{letter.id}  {letter.task}  key={letter.key}  {when(letter.failed_at)}  {letter.error}")
    print(f"{len(letters)} dead job(s)")
    return 0


def dlq_requeue(ops: Operations, args: argparse.Namespace) -> int:
    try:
        requeued = ops.requeue(None if args.all else args.ids)
    except KeyError as missing:
        print(f"taskq: no dead job with id {missing}", file=sys.stderr)
        return 1
    print(f"requeued {len(requeued)}")
    try:
        done = done_keys(ops.settings, requeued)
    except Exception as error:  # noqa: BLE001 (the requeue happened; the report is a courtesy)
        print(f"taskq: could not check which keys are done: {error}", file=sys.stderr)
        done = set()
    for letter in requeued:
        if letter.idempotency in done:
            scope, key = letter.idempotency
            print(f"already done: {letter.id} ({scope} {key}): it will skip its work")
    return 0


def exporter(ops: Operations, args: argparse.Namespace) -> int:
    import logging

    from taskq.metrics import serve

    if ops.metrics is None:
        raise ConfigError(f"the {ops.library} adapter reports no metrics")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(ops.metrics, args.host, args.port, __version__)
    return 0


def migrate(_: Operations | None, args: argparse.Namespace) -> int:
    import psycopg

    from taskq.idempotency import schema_sql
    from taskq.idempotency.psycopg import migrate as run_migration

    url = Settings.from_env().require_database_url()
    with psycopg.connect(url, connect_timeout=10) as conn:
        run_migration(conn, schema_sql(args.table))
    print(f"idempotency table {args.table} up to date")
    return 0


def schema(_: Operations | None, args: argparse.Namespace) -> int:
    from taskq.idempotency import schema_sql

    print(schema_sql(args.table))
    return 0


def version(_: Operations | None, __: argparse.Namespace) -> int:
    print(__version__)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="taskq", description="Operate the job queues of an app.")
    root.add_argument("--app", default=os.environ.get("TASKQ_APP"), help="module:attribute (or TASKQ_APP)")
    verbs = root.add_subparsers(dest="verb", required=True)

    depth_cmd = verbs.add_parser("depth", help="waiting, in-progress and dead jobs")
    depth_cmd.add_argument("--json", action="store_true")
    depth_cmd.set_defaults(run=depth, needs_app=True)

    dlq = verbs.add_parser("dlq", help="the dead-letter store").add_subparsers(dest="dlq_verb", required=True)
    list_cmd = dlq.add_parser("list", help="list dead jobs")
    list_cmd.add_argument("--json", action="store_true")
    list_cmd.set_defaults(run=dlq_list, needs_app=True)
    requeue_cmd = dlq.add_parser("requeue", help="send dead jobs again")
    which = requeue_cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead job")
    which.add_argument("ids", nargs="*", default=[], metavar="ID", help="dead job ids")
    requeue_cmd.set_defaults(run=dlq_requeue, needs_app=True)

    exporter_cmd = verbs.add_parser("exporter", help="serve the queues' metrics to Prometheus on /metrics")
    exporter_cmd.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    exporter_cmd.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    exporter_cmd.set_defaults(run=exporter, needs_app=True)

    for name, run, help_text in (
        ("migrate", migrate, "create the idempotency table in DATABASE_URL (idempotent)"),
        ("schema", schema, "print the idempotency table's SQL"),
    ):
        cmd = verbs.add_parser(name, help=help_text)
        cmd.add_argument("--table", default="taskq_idempotency")
        cmd.set_defaults(run=run, needs_app=False)
    verbs.add_parser("version", help="the toolkit's version").set_defaults(run=version, needs_app=False)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Like `celery -A`, `rq` and `uvicorn`: the app's modules are found from the folder it is run in
    # (a console script's path starts at its own bin folder, not there).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        ops = None
        if args.needs_app:
            if not args.app:
                raise ConfigError("name your app's object with --app module:attribute, or set TASKQ_APP")
            ops = operations_for(load_target(args.app))
        return args.run(ops, args)
    except ConfigError as error:
        print(f"taskq: configuration error: {error}", file=sys.stderr)
        return 2
