"""The periodic `tick`: Arq's cron, in a process that only schedules (`python -m taskq_arq.scheduler`).

An Arq worker with `cron_jobs` enqueues each due run with a job id made of the job's name and
its due time (`unique=True`, the default), so two schedulers enqueue each slot once: the second
finds the job, or its kept result, already there. This process runs no jobs itself
(`max_jobs=0`): the workers run `tick`, and scaling them never adds schedulers.
"""

from __future__ import annotations

import logging.config
from pathlib import Path

from arq import cron
from arq.logs import default_log_config

from taskq_arq import tasks
from taskq_arq.queue import settings
from taskq_arq.worker import TaskqWorker, options


def main() -> None:
    logging.config.dictConfig(default_log_config(verbose=False))
    scheduler = TaskqWorker(
        heartbeat_file=Path("/tmp/beat-heartbeat"),
        cron_jobs=[cron(tasks.tick, name="cron:tick", unique=True, **settings.tick_cron_fields())],
        **options(max_jobs=0),
    )
    scheduler.run()


if __name__ == "__main__":
    main()
