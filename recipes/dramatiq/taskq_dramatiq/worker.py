"""`python -m taskq_dramatiq.worker`: the `dramatiq` command, with options derived from settings.

    dramatiq taskq_dramatiq.worker:setup_worker_process --queues default \\
        --processes 2 --threads 4 --worker-shutdown-timeout <(grace - 10 s) in ms>

Run this way rather than as `dramatiq …` in the compose file so that the shutdown timeout (in
milliseconds, 10 minutes by default) comes from STOP_GRACE_PERIOD_S, and the worker refuses a
grace period shorter than the time limit. This process stays Dramatiq's main process: it
forwards one SIGTERM to each worker process, which stop taking messages, finish the running
ones and exit 0. A second SIGTERM kills them at once (exit 1, messages left unacked): send
SIGTERM to this process only, never to the whole process group.

This module imports neither the broker nor the actors: the broker must be created in each worker
process, after the fork, or every process would share one broker id, and with it one heartbeat
(a dead process's messages would never be recovered while another one lives).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from taskq_common.config import load_or_exit
from taskq_dramatiq import settings as settings_module

HEARTBEAT_FILE = Path("/tmp/worker-heartbeat")
# The Prometheus exporter listens on this port in the worker container, reachable from the
# stack's network only (the port is not published).
METRICS_PORT = 9191


def setup_worker_process() -> None:
    """Loaded by the dramatiq command in each worker process: the actors, their broker, and what
    only a worker needs (metrics and the heartbeat file)."""
    from dramatiq.middleware.prometheus import Prometheus

    import taskq_dramatiq.tasks  # noqa: F401 (declares the actors)
    from taskq_dramatiq.broker import PutBackWhenStopping, broker

    # Off by default in Dramatiq 2.x; its exposition server runs in a process of its own.
    broker.add_middleware(Prometheus())
    # Last: every other middleware's before_process_message has run, and its after_skip_message
    # undoes it (Prometheus's in-progress gauge, TimeLimit's deadline).
    broker.add_middleware(PutBackWhenStopping())
    broker.heartbeat_file = HEARTBEAT_FILE

    # Dramatiq's worker process stops on SIGTERM, and on SIGHUP (the main process's reload). Its
    # handler only sets a flag, read once a second; the broker must stop taking jobs at once.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        dramatiq_handler = signal.getsignal(signum)
        if not callable(dramatiq_handler):
            raise RuntimeError("setup_worker_process is for the dramatiq command's worker processes")

        def stop_taking_jobs(signum, frame, dramatiq_handler=dramatiq_handler) -> None:
            broker.stopping.set()
            dramatiq_handler(signum, frame)

        signal.signal(signum, stop_taking_jobs)


def main() -> None:
    settings = load_or_exit(settings_module.load)
    # Read by Dramatiq when it is imported, so set before (lower case: Dramatiq's names).
    os.environ["dramatiq_worker_timeout"] = str(settings_module.WORKER_POLL_MS)  # noqa: SIM112
    os.environ["dramatiq_prom_host"] = "0.0.0.0"  # noqa: SIM112 (the container's network only)
    os.environ["dramatiq_prom_port"] = str(METRICS_PORT)  # noqa: SIM112
    from dramatiq import cli

    args = cli.make_argument_parser().parse_args(
        [
            "taskq_dramatiq.worker:setup_worker_process",
            "--queues=default",
            f"--processes={settings.worker_processes}",
            f"--threads={settings.worker_threads}",
            f"--worker-shutdown-timeout={settings.worker_shutdown_timeout_ms}",
        ]
    )
    raise SystemExit(cli.main(args))


if __name__ == "__main__":
    main()
