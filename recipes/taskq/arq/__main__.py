"""python -m taskq.arq worker MODULE:WorkerSettings
python -m taskq.arq scheduler MODULE:WorkerSettings

WorkerSettings made by taskq.arq.worker_settings(...). Run this way rather than with the `arq`
command because the worker is Arq's Worker with the toolkit's additions (taskq.arq.worker), and
the scheduler is a worker that runs no jobs."""

from __future__ import annotations

import argparse
import logging.config
import sys

from arq.logs import default_log_config

from taskq.cli import load_target
from taskq.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taskq.arq")
    parser.add_argument("command", choices=["worker", "scheduler"])
    parser.add_argument("settings", help="module:attribute of your taskq.arq.worker_settings(...)")
    args = parser.parse_args(argv)
    logging.config.dictConfig(default_log_config(verbose=False))
    try:
        target = load_target(args.settings)
        toolkit_of = getattr(target, "taskq", None)
        if toolkit_of is None:
            raise ConfigError(f"{args.settings} was not made by taskq.arq.worker_settings(...)")
        toolkit = toolkit_of()
        worker = toolkit.worker() if args.command == "worker" else toolkit.scheduler()
    except ConfigError as error:
        print(f"taskq: configuration error: {error}", file=sys.stderr)
        return 2
    worker.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
