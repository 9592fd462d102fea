"""The queue metrics every library reports the same way, and the exporter that serves them to
Prometheus.

    TASKQ_APP=myapp.tasks:app taskq exporter --port 9808        # GET /metrics, GET /backlog

Each scrape reads Redis there and then (no cache, no timer: a queue that empties reads 0 at once),
with O(1) and O(log N) commands in one or two pipelined round trips: never SCAN or KEYS, so the
cost of a scrape does not grow with the keyspace (Arq keeps a result key per job for an hour). A
scrape whose Redis read fails answers 500, so Prometheus's own `up` for the target reads 0 (the
"failed scrapes" rule of Prometheus's guide to writing exporters).

GET /backlog?queues=a,b answers {"backlog": N, "queues": {"a": n, ...}}: jobs waiting plus jobs
running, per queue and summed (all the app's queues without `queues`), what an autoscaler (KEDA's
metrics-api trigger in the Helm charts) sizes the workers by: busy workers are not idle workers.

Names and units follow that guide: seconds, `_total` for counters, a `queue_name` label (the
label celery-exporter and Dramatiq's middleware use too, so their metrics join ours).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from taskq.presence import OUTCOMES

__all__ = ["QueueMetrics", "Snapshot", "age_s", "exposition", "serve", "version_of"]

log = logging.getLogger("taskq.exporter")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PORT = 9808


@dataclass
class QueueMetrics:
    """One queue, as its library keeps it in Redis."""

    # due and waiting for a worker (not running, not waiting for a retry's or an ETA's time)
    depth: int = 0
    # waiting for their time: retry backoff, ETA, deferred (where the library keeps them in Redis)
    delayed: int = 0
    # now - the time the oldest waiting job became due (0 when none waits)
    oldest_age_s: float = 0.0
    # taken by a worker and not yet acknowledged
    in_progress: int = 0
    # in the dead-letter store, waiting for a person
    dead_letters: int = 0
    # taken longer ago than a job may run, or held by a worker that is gone: redelivered later
    stuck: int = 0
    # attempts ended, by outcome (taskq.presence.OUTCOMES), counted in Redis since the first
    outcomes: dict[str, int] = field(default_factory=dict)

    def add_outcomes(self, raw: dict) -> QueueMetrics:
        """Fill outcomes from the HGETALL of the queue's counters."""
        counts = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
        self.outcomes = {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}
        return self


@dataclass
class Snapshot:
    library: str
    library_version: str
    queues: dict[str, QueueMetrics] = field(default_factory=dict)
    # live workers and schedulers (taskq.presence): [{"member", "role", "capacity", "seen"}, ...]
    processes: list[dict] = field(default_factory=list)
    # schedule entry -> (last fire, seconds from it to the next fire)
    schedules: dict[str, tuple[float, float]] = field(default_factory=dict)

    def add_presence(self, raw_processes: dict, raw_schedules: dict, now: float) -> Snapshot:
        """Fill processes and schedules from the HGETALLs of taskq.presence's two hashes."""
        from taskq.presence import live_processes, schedules

        self.processes = live_processes(raw_processes, now)
        self.schedules = schedules(raw_schedules)
        return self


# (name, type, help, unit-free attribute of QueueMetrics)
QUEUE_METRICS = (
    ("taskq_queue_depth", "gauge", "Jobs due and waiting for a worker.", "depth"),
    ("taskq_queue_delayed", "gauge", "Jobs waiting for their time (retry backoff, ETA).", "delayed"),
    (
        "taskq_queue_oldest_job_age_seconds",
        "gauge",
        "Seconds since the oldest waiting job became due (0 when none waits).",
        "oldest_age_s",
    ),
    ("taskq_jobs_in_progress", "gauge", "Jobs taken by a worker and not yet acknowledged.", "in_progress"),
    ("taskq_dead_letters", "gauge", "Jobs in the dead-letter store.", "dead_letters"),
    (
        "taskq_jobs_stuck",
        "gauge",
        "Jobs taken longer ago than a job may run, or held by a worker that is gone.",
        "stuck",
    ),
)
PROCESS_METRICS = (
    ("taskq_workers", "gauge", "Live processes (a heartbeat in the last minute), by role."),
    ("taskq_worker_capacity", "gauge", "Jobs the live workers can run at once."),
)
SCHEDULE_METRICS = (
    (
        "taskq_schedule_last_fire_timestamp_seconds",
        "gauge",
        "The slot a schedule entry last fired for (any scheduler).",
    ),
    ("taskq_schedule_interval_seconds", "gauge", "Seconds from an entry's last fire to its next."),
)
OUTCOME_METRIC = ("taskq_jobs_total", "counter", "Job attempts ended, by outcome (succeeded, retried, dead).")
METRIC_NAMES = (
    *(name for name, *_ in QUEUE_METRICS),
    OUTCOME_METRIC[0],
    *(name for name, *_ in PROCESS_METRICS),
    *(name for name, *_ in SCHEDULE_METRICS),
    "taskq_exporter_info",
    "taskq_exporter_scrape_duration_seconds",
)


def version_of(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def age_s(now: float, *since: float | None) -> float:
    """now - the latest of the given times (an ETA later than the enqueue counts from the ETA);
    0 when none is known or it lies ahead."""
    known = [moment for moment in since if moment is not None]
    return max(0.0, now - max(known)) if known else 0.0


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def exposition(snapshot: Snapshot, scrape_duration_s: float, version: str) -> str:
    """The Prometheus text format (0.0.4) of a snapshot."""
    lines = []
    for name, kind, help_text, attribute in QUEUE_METRICS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for queue, metrics in sorted(snapshot.queues.items()):
            lines.append(f'{name}{{queue_name="{_label(queue)}"}} {_number(getattr(metrics, attribute))}')
    name, kind, help_text = OUTCOME_METRIC
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for queue, metrics in sorted(snapshot.queues.items()):
        for outcome in OUTCOMES:
            count = metrics.outcomes.get(outcome, 0)
            lines.append(f'{name}{{queue_name="{_label(queue)}",outcome="{outcome}"}} {count}')
    (workers_name, workers_type, workers_help), (capacity_name, capacity_type, capacity_help) = (
        PROCESS_METRICS
    )
    lines += [f"# HELP {workers_name} {workers_help}", f"# TYPE {workers_name} {workers_type}"]
    for role in ("scheduler", "worker"):
        count = sum(1 for process in snapshot.processes if process.get("role") == role)
        lines.append(f'{workers_name}{{role="{role}"}} {count}')
    capacity = sum(int(p.get("capacity") or 0) for p in snapshot.processes if p.get("role") == "worker")
    lines += [f"# HELP {capacity_name} {capacity_help}", f"# TYPE {capacity_name} {capacity_type}"]
    lines.append(f"{capacity_name} {capacity}")
    for index, (name, kind, help_text) in enumerate(SCHEDULE_METRICS):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for entry, values in sorted(snapshot.schedules.items()):
            lines.append(f'{name}{{schedule="{_label(entry)}"}} {_number(float(values[index]))}')
    lines += [
        "# HELP taskq_exporter_info The exporter and the library it reads.",
        "# TYPE taskq_exporter_info gauge",
        f'taskq_exporter_info{{library="{_label(snapshot.library)}",'
        f'library_version="{_label(snapshot.library_version)}",version="{_label(version)}"}} 1',
        "# HELP taskq_exporter_scrape_duration_seconds Time this scrape took to read Redis.",
        "# TYPE taskq_exporter_scrape_duration_seconds gauge",
        f"taskq_exporter_scrape_duration_seconds {scrape_duration_s!r}",
    ]
    return "\n".join(lines) + "\n"


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], collect: Callable[[], Snapshot], version: str) -> None:
        super().__init__(address, _Handler)
        self.collect = collect
        self.version = version


class _Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    server_version = "taskq-exporter"
    sys_version = ""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._answer(200, "ok\n")
        elif path == "/backlog":
            self._backlog()
        elif path == "/metrics":
            started = time.perf_counter()
            try:
                snapshot = self.server.collect()
            except Exception as error:  # noqa: BLE001 (any failed read is a failed scrape, said why)
                log.warning("scrape failed: %s: %s", type(error).__name__, error)
                self._answer(500, f"taskq exporter: reading Redis failed: {type(error).__name__}: {error}\n")
                return
            self._answer(200, exposition(snapshot, time.perf_counter() - started, self.server.version))
        else:
            self._answer(404, "not found: the metrics are at /metrics, the backlog at /backlog\n")

    def _backlog(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        wanted = [name for value in query.get("queues", []) for name in value.split(",") if name]
        try:
            snapshot = self.server.collect()
        except Exception as error:  # noqa: BLE001 (as for /metrics)
            log.warning("backlog read failed: %s: %s", type(error).__name__, error)
            self._answer(500, f"taskq exporter: reading Redis failed: {type(error).__name__}: {error}\n")
            return
        if unknown := [name for name in wanted if name not in snapshot.queues]:
            known = ", ".join(sorted(snapshot.queues))
            self._answer(400, f"unknown queue(s) {', '.join(unknown)}: the app declares {known}\n")
            return
        queues = {
            name: metrics.depth + metrics.in_progress
            for name, metrics in snapshot.queues.items()
            if not wanted or name in wanted
        }
        body = json.dumps({"backlog": sum(queues.values()), "queues": queues})
        self._answer(200, body + "\n", "application/json")

    def _answer(self, status: int, body: str, content_type: str = CONTENT_TYPE) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug(format, *args)


def serve(collect: Callable[[], Snapshot], host: str, port: int, version: str) -> None:
    """Serve /metrics until SIGTERM or SIGINT, then return (a scrape in flight is finished)."""
    server = ExporterServer((host, port), collect, version)

    def stop(*_: object) -> None:
        # shutdown() waits for serve_forever, which runs in this thread: ask from another.
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info("serving metrics on http://%s:%s/metrics", host, port)
        server.serve_forever()
    finally:
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
