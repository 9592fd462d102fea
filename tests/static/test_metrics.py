"""The exporter's HTTP side and its exposition, without Redis (the adapters' own tests read real
queues): the format Prometheus parses, a failed read as a failed scrape, a clean stop."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

from taskq.metrics import METRIC_NAMES, QueueMetrics, Snapshot, age_s, exposition, serve
from tests.promtool import check_metrics


def snapshot() -> Snapshot:
    return Snapshot(
        library="RQ",
        library_version="2.6.0",
        queues={
            "default": QueueMetrics(
                depth=3, delayed=1, oldest_age_s=12.5, in_progress=2, dead_letters=4, stuck=1
            ),
            'odd "queue"\\': QueueMetrics(),
        },
        processes=[
            {"member": "a:1", "role": "worker", "capacity": 8, "seen": 1.0},
            {"member": "b:1", "role": "worker", "capacity": 4, "seen": 1.0},
            {"member": "c:1", "role": "scheduler", "capacity": 0, "seen": 1.0},
        ],
        schedules={"tick": (1_000_020.0, 60.0)},
    )


def test_the_exposition_passes_promtool_and_labels_every_queue():
    text = exposition(snapshot(), 0.0015, "0.3.0")
    check_metrics(text)
    assert 'taskq_queue_depth{queue_name="default"} 3' in text
    assert 'taskq_queue_oldest_job_age_seconds{queue_name="default"} 12.5' in text
    assert 'taskq_queue_depth{queue_name="odd \\"queue\\"\\\\"} 0' in text
    assert 'taskq_exporter_info{library="RQ",library_version="2.6.0",version="0.3.0"} 1' in text
    assert 'taskq_jobs_stuck{queue_name="default"} 1' in text
    assert 'taskq_workers{role="worker"} 2' in text and 'taskq_workers{role="scheduler"} 1' in text
    assert "taskq_worker_capacity 12" in text
    assert 'taskq_jobs_total{queue_name="default",outcome="retried"} 0' in text
    assert 'taskq_schedule_last_fire_timestamp_seconds{schedule="tick"} 1000020.0' in text
    assert 'taskq_schedule_interval_seconds{schedule="tick"} 60.0' in text
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert names == set(METRIC_NAMES)


def test_no_worker_is_zero_workers_not_a_missing_series():
    text = exposition(Snapshot("Arq", "0.28.0"), 0.001, "0.3.0")
    check_metrics(text)
    assert 'taskq_workers{role="worker"} 0' in text and "taskq_worker_capacity 0" in text


def test_the_age_counts_from_the_later_of_enqueue_and_eta():
    assert age_s(100.0, 40.0, 70.0) == 30.0
    assert age_s(100.0, 40.0, None) == 60.0
    assert age_s(100.0, None, None) == 0.0
    assert age_s(100.0, 130.0) == 0.0  # due in the future: not waiting yet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (http://127.0.0.1 only)
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.headers["Content-Type"], answer.read().decode()


def test_a_scrape_reads_again_each_time_and_a_failed_read_is_a_500_until_it_works_again():
    state = {"fail": False, "reads": 0}

    def collect() -> Snapshot:
        state["reads"] += 1
        if state["fail"]:
            raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")
        return snapshot()

    port = free_port()
    results: dict[str, object] = {}

    def scrape_then_stop() -> None:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                results["ok"] = get(f"{base}/metrics")
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        state["fail"] = True
        results["failed"] = get(f"{base}/metrics")
        state["fail"] = False
        results["again"] = get(f"{base}/metrics")
        results["health"] = get(f"{base}/healthz")
        results["backlog"] = get(f"{base}/backlog")
        results["some"] = get(f"{base}/backlog?queues=default")
        results["typo"] = get(f"{base}/backlog?queues=default,defualt")
        results["other"] = get(f"{base}/")
        signal.raise_signal(signal.SIGTERM)  # the way Docker and the kubelet stop it

    scraper = threading.Thread(target=scrape_then_stop)
    scraper.start()
    started = time.monotonic()
    serve(collect, "127.0.0.1", port, "0.3.0")  # returns on SIGTERM
    scraper.join(5)
    assert time.monotonic() - started < 10
    status, content_type, body = results["ok"]
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert "taskq_exporter_scrape_duration_seconds " in body
    status, _, body = results["failed"]
    assert status == 500 and "Connection refused" in body and "taskq_queue_depth" not in body
    assert results["again"][0] == 200 and results["health"][0] == 200 and results["other"][0] == 404
    status, content_type, body = results["backlog"]
    # waiting plus running: what KEDA sizes the workers by
    assert status == 200 and content_type == "application/json"
    assert json.loads(body) == {"backlog": 5, "queues": {"default": 5, 'odd "queue"\\': 0}}
    assert json.loads(results["some"][2]) == {"backlog": 5, "queues": {"default": 5}}
    status, _, body = results["typo"]
    assert status == 400 and "unknown queue(s) defualt" in body and "default" in body
    assert state["reads"] == 6
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back as it was
