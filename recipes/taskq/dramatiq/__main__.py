"""python -m taskq.dramatiq worker MODULE [MODULE …] [--queues a b]
python -m taskq.dramatiq scheduler MODULE:SCHEDULE

worker: the `dramatiq` command, with options derived from the settings: --processes and --threads
(WORKER_PROCESSES, 2; WORKER_THREADS, 4) and --worker-shutdown-timeout (the grace period less the
time a process needs to exit; Dramatiq's default, 10 minutes, ignores both). This process stays
Dramatiq's main process: it forwards one SIGTERM to each worker process, which stop taking
messages, finish the running ones and exit 0. It imports neither the broker nor the actors: each
worker process must create its own broker after the fork (its own broker id and heartbeat).

scheduler: sends a list of taskq.schedule.Entry, each slot once however many schedulers run.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from taskq.errors import ConfigError
from taskq.settings import DramatiqSettings, int_setting


def worker(modules: list[str], queues: list[str] | None) -> int:
    settings = DramatiqSettings.from_env().check()
    from dramatiq import cli

    argv = [
        *modules,
        f"--processes={int_setting(os.environ, 'WORKER_PROCESSES', 2)}",
        f"--threads={int_setting(os.environ, 'WORKER_THREADS', 4)}",
        f"--worker-shutdown-timeout={settings.worker_shutdown_timeout_ms}",
    ]
    if queues:
        argv += ["--queues", *queues]
    return cli.main(cli.make_argument_parser().parse_args(argv))


def scheduler(target: str) -> int:
    import dramatiq

    from taskq.cli import load_target
    from taskq.heartbeat import DEFAULT_SCHEDULER_FILE, Heartbeat
    from taskq.schedule import SlotLoop

    entries = load_target(target)
    client = dramatiq.get_broker().client

    def send(entry, slot: int) -> None:
        entry.task.send(*entry.args, **entry.call_kwargs(slot))

    loop = SlotLoop(entries, client, send, heartbeat=Heartbeat(DEFAULT_SCHEDULER_FILE))
    signal.signal(signal.SIGTERM, lambda *_: loop.stop())
    signal.signal(signal.SIGINT, lambda *_: loop.stop())
    loop.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taskq.dramatiq")
    commands = parser.add_subparsers(dest="command", required=True)
    run_workers = commands.add_parser("worker", help="the dramatiq command with derived options")
    run_workers.add_argument("modules", nargs="+", help="the modules that declare the broker and actors")
    run_workers.add_argument("--queues", nargs="+", help="only these queues (default: all)")
    run_scheduler = commands.add_parser("scheduler", help="send the schedule, each slot once")
    run_scheduler.add_argument("schedule", help="module:attribute of a list of taskq.schedule.Entry")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "worker":
            return worker(args.modules, args.queues)
        return scheduler(args.schedule)
    except ConfigError as error:
        print(f"taskq: configuration error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
