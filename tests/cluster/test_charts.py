"""Each chart on the test cluster (milestone M2): installed with the README's line and `--wait`
from the images `make` builds, `helm test`, then the contract's promises under Kubernetes' own
operations: jobs run once; a rollout of the workers loses and cuts short no job; an upgrade
rolls the pods and keeps the passwords; a killed worker's job is redelivered; two schedulers
fire each slot once; the monitor asks for its Secret's credentials. And (M3) its
NetworkPolicies, enforced: only the release's pods reach its Redis and Postgres."""

from __future__ import annotations

import base64
import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes import client, watch

from tests.cluster.conftest import (
    RESTRICTED,
    RESTRICTED_CONTAINER,
    helm_cli,
    kubectl,
    load_images,
    opaque_secrets,
    readme_install_args,
    wait_for_phase,
)
from tests.conftest import MEASUREMENTS
from tests.integration.stack import wait_for
from tests.promtool import check_metrics

pytestmark = pytest.mark.cluster

TIME_LIMIT_S = 10
TICK_INTERVAL_S = 3
REDELIVERY_BOUND_S = 2 * TIME_LIMIT_S + 120  # the contract's


def image_values(component: str, variable: str) -> list[str]:
    """The datastore image the stacks use here (official, or the stand-in built from Debian)."""
    image = os.environ.get(variable, "")
    assert ":" in image, f"{variable}={image!r}: run the cluster tests with `make test-cluster`"
    repository, tag = image.rsplit(":", 1)
    return ["--set", f"{component}.image.repository={repository}", "--set", f"{component}.image.tag={tag}"]


def install_args(lib: str, namespace: str, *extra: str) -> list[str]:
    """The README's `helm install` line with the images built here and the test timings."""
    return readme_install_args(
        lib, namespace,
        *image_values("redis", "REDIS_IMAGE"), *image_values("postgres", "POSTGRES_IMAGE"),
        "--set", f"jobs.timeLimitSeconds={TIME_LIMIT_S}",
        "--set", f"jobs.tickIntervalSeconds={TICK_INTERVAL_S}",
        *extra,
    )  # fmt: skip


@dataclass
class Release:
    lib: str
    namespace: str
    api: client.ApiClient
    app_url: str

    def post_job(self, **body) -> dict:
        # Tried for up to 30 s: after an install, kube-proxy programs the Service's first endpoints a
        # moment after the pods turn Ready (and helm --wait returns), and refuses meanwhile.
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.post(f"{self.app_url}/jobs", json=body, timeout=10)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        assert response.status_code == 202, response.text
        return response.json()

    def get(self, path: str) -> dict:
        response = requests.get(f"{self.app_url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def deployment(self, component: str) -> str:
        return f"jobs-{self.lib}-{component}"

    def pods(self, component: str, stopping: bool = False) -> list[client.V1Pod]:
        """The component's pods; those still stopping after a rollout only if asked for."""
        selector = f"app.kubernetes.io/component={component}"
        pods = client.CoreV1Api(self.api).list_namespaced_pod(self.namespace, label_selector=selector).items
        return [p for p in pods if stopping or not p.metadata.deletion_timestamp]

    def diagnosis(self, component: str) -> str:
        """For a failure message: the component's pods, their restarts, and their logs' last lines."""
        core, lines = client.CoreV1Api(self.api), []
        for pod in self.pods(component):
            statuses = pod.status.container_statuses or []
            restarts = sum(status.restart_count for status in statuses)
            lines.append(
                f"--- {pod.metadata.name}: {pod.status.phase}, {restarts} restarts,"
                f" since {pod.status.start_time}"
            )
            try:
                log = core.read_namespaced_pod_log(pod.metadata.name, self.namespace, tail_lines=25)
            except client.ApiException as error:
                log = f"(no log: {error.reason})"
            lines.append(log)
        return "\n".join(lines)


def bind_volumes(api: client.ApiClient, lib: str, namespace: str) -> list[str]:
    """A hostPath volume, writable by the datastores' non-root users, bound ahead of time to each
    claim the chart's StatefulSets will make (the cluster has no provisioner)."""
    rendered = helm_cli("template", *install_args(lib, namespace)).stdout
    core, state, made = client.CoreV1Api(api), Path(os.environ["TASKQ_CLUSTER_STATE"]), []
    for o in yaml.safe_load_all(rendered):
        if not o or o["kind"] != "StatefulSet":
            continue
        for template in o["spec"].get("volumeClaimTemplates", []):
            for ordinal in range(o["spec"].get("replicas", 1)):
                claim = f"{template['metadata']['name']}-{o['metadata']['name']}-{ordinal}"
                folder = state / "volumes" / namespace / claim
                folder.mkdir(parents=True)
                folder.chmod(0o777)
                name = f"{namespace}-{claim}"
                core.create_persistent_volume(
                    {
                        "metadata": {"name": name},
                        "spec": {
                            "capacity": {"storage": "100Gi"},
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": "taskq-local",
                            "persistentVolumeReclaimPolicy": "Retain",
                            "claimRef": {"namespace": namespace, "name": claim},
                            "hostPath": {"path": str(folder), "type": "Directory"},
                        },
                    }
                )
                made.append(name)
    return made


@pytest.fixture(scope="module")
def release(lib: str, api: client.ApiClient) -> Iterator[Release]:
    load_images(f"taskq/{lib}:dev", os.environ["REDIS_IMAGE"], os.environ["POSTGRES_IMAGE"])
    core = client.CoreV1Api(api)
    namespace = f"{lib}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace, "labels": RESTRICTED}})
    volumes = bind_volumes(api, lib, namespace)
    try:
        started = time.monotonic()
        helm_cli("install", *install_args(lib, namespace, "--wait", "--timeout", "6m"), timeout=420)
        MEASUREMENTS.append(f"{lib}: helm install --wait done in {time.monotonic() - started:.0f} s")
        service = core.read_namespaced_service(f"jobs-{lib}-app", namespace)
        # kube-proxy's rules reach a ClusterIP from the node itself.
        yield Release(lib, namespace, api, f"http://{service.spec.cluster_ip}:{service.spec.ports[0].port}")
    finally:
        core.delete_namespace(namespace)

        def namespaces() -> set[str]:
            return {n.metadata.name for n in core.list_namespace().items}

        wait_for(namespaces, lambda ns: namespace not in ns, 180, 1)
        for name in volumes:
            core.delete_persistent_volume(name)


def test_helm_test_passes(release: Release):
    helm_cli("test", "jobs", "--namespace", release.namespace, "--timeout", "3m", timeout=240)


# Connects to each HOST:PORT once a second for ROUNDS rounds; prints what happened each time.
PROBE = """
import socket, sys, time
rounds, targets = int(sys.argv[1]), sys.argv[2:]
for round in range(rounds):
    for target in targets:
        host, port = target.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            print(round, target, "open", flush=True)
        except OSError as error:
            print(round, target, type(error).__name__, flush=True)
    time.sleep(1)
"""
PROBE_ROUNDS = 15


def probe_datastores(release: Release, labels: dict[str, str]) -> dict[str, list[str]]:
    """From a pod of the app's image with these labels, in the release's namespace: each
    datastore Service's port, tried PROBE_ROUNDS times; what each try gave, by target."""
    core, name = client.CoreV1Api(release.api), f"probe-{uuid.uuid4().hex[:6]}"
    targets = [f"jobs-{release.lib}-redis:6379", f"jobs-{release.lib}-postgres:5432"]
    container = {**RESTRICTED_CONTAINER, "name": "probe", "image": f"taskq/{release.lib}:dev"}
    container["command"] = ["python", "-c", PROBE, str(PROBE_ROUNDS), *targets]
    core.create_namespaced_pod(
        release.namespace,
        {
            "metadata": {"name": name, "labels": labels},
            "spec": {"restartPolicy": "Never", "containers": [container]},
        },
    )
    try:
        phase = wait_for_phase(core, release.namespace, name, {"Succeeded", "Failed"}, timeout=120)
        log = core.read_namespaced_pod_log(name, release.namespace)
        assert phase == "Succeeded", log
    finally:
        core.delete_namespaced_pod(name, release.namespace, grace_period_seconds=0)
    outcomes: dict[str, list[str]] = {target: [] for target in targets}
    for line in log.splitlines():
        _, target, outcome = line.split()
        outcomes[target].append(outcome)
    assert all(len(tries) == PROBE_ROUNDS for tries in outcomes.values()), log
    return outcomes


def test_only_the_releases_pods_reach_redis_and_postgres(release: Release):
    """The chart's NetworkPolicies, enforced (kube-router): the same pod with the release's
    labels reaches both datastores, and without them reaches neither."""
    app_labels = release.pods("app")[0].metadata.labels
    release_labels = {k: app_labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
    with ThreadPoolExecutor(2) as pool:
        member = pool.submit(probe_datastores, release, {**release_labels, "probe": "member"})
        outsider = pool.submit(probe_datastores, release, {"probe": "outsider"})
        member, outsider = member.result(), outsider.result()
    for target, tries in member.items():
        # The enforcer lets a new pod's address in when it learns of the pod, a moment after
        # the pod starts; from then on, every try connects.
        assert "open" in tries, (target, tries)
        assert set(tries[tries.index("open") :]) == {"open"}, (target, tries)
    for target, tries in outsider.items():
        # Refused (kube-router's REJECT) or unanswered: never open, and never a name or route
        # failure, which would pass without any policy.
        assert set(tries) <= {"ConnectionRefusedError", "TimeoutError"}, (target, tries)


def test_jobs_posted_through_the_app_service_run_once(release: Release):
    keys = [f"once-{i}-{uuid.uuid4().hex[:6]}" for i in range(5)]
    for key in keys:
        release.post_job(task="demo", key=key, sleep_s=0)
        release.post_job(task="demo", key=key, sleep_s=0)  # the same key twice: one effect

    def effects() -> list[int]:
        return [release.get(f"/effects/{k}")["effects"] for k in keys]

    wait_for(effects, lambda counts: counts == [1] * len(keys), 60)
    time.sleep(2)
    assert effects() == [1] * len(keys)


def test_the_exporter_reports_the_queues_and_every_worker_and_scheduler(release: Release):
    """Through its Service, as Prometheus's ServiceMonitor and KEDA's trigger reach it: every worker
    pod's processes and the scheduler announce themselves in the release's Redis."""
    service = client.CoreV1Api(release.api).read_namespaced_service(
        f"jobs-{release.lib}-exporter", release.namespace
    )
    base = f"http://{service.spec.cluster_ip}:9808"

    def scrape() -> str:
        response = requests.get(f"{base}/metrics", timeout=10)
        response.raise_for_status()
        return response.text

    def workers(text: str, role: str) -> int:
        return int(
            next(
                line for line in text.splitlines() if line.startswith(f'taskq_workers{{role="{role}"}}')
            ).split()[1]
        )

    worker_pods = len(release.pods("worker"))
    text = wait_for(
        scrape, lambda t: workers(t, "worker") >= worker_pods and workers(t, "scheduler") >= 1, 90, 2
    )
    check_metrics(text)
    assert 'taskq_queue_depth{queue_name="default"}' in text
    backlog = requests.get(f"{base}/backlog?queues=default", timeout=10)
    assert backlog.status_code == 200 and set(backlog.json()) == {"backlog", "queues"}


def test_the_monitor_asks_for_the_credentials_of_its_secret(release: Release):
    """Through its Service: its pages, and Flower's /metrics (which Flower leaves open; the
    ServiceMonitor sends the same credentials), refuse a request without the credentials of the
    release's monitor Secret and answer one with them."""
    name = release.deployment("monitor")
    service = client.CoreV1Api(release.api).read_namespaced_service(name, release.namespace)
    base = f"http://{service.spec.cluster_ip}:{service.spec.ports[0].port}"
    secret = opaque_secrets(release.api, release.namespace)[name]
    credentials = tuple(base64.b64decode(secret[key]).decode() for key in ("username", "password"))
    for path in ["/", "/metrics"] if release.lib == "celery" else ["/"]:
        assert requests.get(f"{base}{path}", timeout=10).status_code == 401, path
        answer = requests.get(f"{base}{path}", auth=credentials, timeout=10)
        assert answer.status_code == 200, (path, answer.status_code)
        if path == "/metrics":
            assert "flower_worker_online" in answer.text


class TerminatedWorkers:
    """Watches the worker pods and records, for each that stops, how its container ended and by
    when Kubernetes would have killed it (deletionTimestamp is the delete plus the grace period)."""

    def __init__(self, release: Release):
        self.release, self.ended, self._stop = release, {}, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self):
        core, w = client.CoreV1Api(self.release.api), watch.Watch()
        for event in w.stream(
            core.list_namespaced_pod, self.release.namespace,
            label_selector="app.kubernetes.io/component=worker", timeout_seconds=600,
        ):  # fmt: skip
            pod = event["object"]
            for status in pod.status.container_statuses or []:
                if status.state.terminated and pod.metadata.deletion_timestamp:
                    self.ended[pod.metadata.name] = (status.state.terminated, pod.metadata.deletion_timestamp)
            if self._stop.is_set():
                w.stop()

    def stop(self):
        self._stop.set()


def test_a_rollout_of_the_workers_loses_no_job_and_cuts_none_short(release: Release):
    before = {p.metadata.name for p in release.pods("worker")}
    keys = [f"rollout-{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    for key in keys:
        release.post_job(task="demo", key=key, sleep_s=6)
    wait_for(lambda: [release.get(f"/effects/{k}")["attempts"] for k in keys], any, 30)
    watcher = TerminatedWorkers(release)
    kubectl("-n", release.namespace, "rollout", "restart", f"deploy/{release.deployment('worker')}")
    kubectl(
        "-n",
        release.namespace,
        "rollout",
        "status",
        f"deploy/{release.deployment('worker')}",
        "--timeout=5m",
        timeout=320,
    )

    effects = wait_for(
        lambda: [release.get(f"/effects/{k}") for k in keys],
        lambda effects: all(e["effects"] == 1 for e in effects),
        REDELIVERY_BOUND_S, 1,
    )  # fmt: skip
    wait_for(lambda: set(watcher.ended), lambda ended: before <= ended, 60)
    watcher.stop()
    # One attempt each: a job cut short by the rollout would have been run again.
    assert [e["attempts"] for e in effects] == [1] * len(keys), effects
    for name in before:
        terminated, kill_at = watcher.ended[name]
        assert terminated.exit_code == 0, (name, terminated)
        assert terminated.finished_at <= kill_at, (name, terminated.finished_at, kill_at)


class Requester:
    """Asks the app's Service for /healthz on a new connection every 0.2 s, in a thread, and keeps
    every failure: what a client of the app meets during a rollout."""

    def __init__(self, release: Release):
        self.url, self.answered, self.failures = f"{release.app_url}/healthz", 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._ask, daemon=True)

    def _ask(self) -> None:
        while not self._stop.wait(0.2):
            try:
                response = requests.get(self.url, timeout=5)
                response.raise_for_status()
                self.answered += 1
            except requests.RequestException as error:
                self.failures.append(f"{dt.datetime.now(dt.UTC):%H:%M:%S.%f}: {error}")

    def __enter__(self) -> Requester:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def test_an_upgrade_rolls_the_pods_and_keeps_the_generated_passwords(release: Release):
    passwords, workers, apps = (
        opaque_secrets(release.api, release.namespace),
        {p.metadata.name for p in release.pods("worker")},
        {p.metadata.name for p in release.pods("app")},
    )
    with Requester(release) as requester:
        helm_cli(
            "upgrade",
            *install_args(release.lib, release.namespace, "--set", "jobs.retryBaseSeconds=3"),
            "--wait", "--timeout", "5m",
            timeout=320,
        )  # fmt: skip
        # The old app pods' preStop sleep outlasts --wait: ask until they are gone.
        wait_for(lambda: len(release.pods("app", stopping=True)), lambda n: n == len(apps), 60)
    assert opaque_secrets(release.api, release.namespace) == passwords
    assert not workers & {p.metadata.name for p in release.pods("worker")}, "the workers were not rolled"
    assert not apps & {p.metadata.name for p in release.pods("app")}, "the app was not rolled"
    # Without the app's preStop sleep, a stopping pod's port closed while kube-proxy still sent
    # requests to it: refused.
    assert requester.answered > 20 and not requester.failures, requester.failures
    key = f"upgraded-{uuid.uuid4().hex[:6]}"
    release.post_job(task="demo", key=key, sleep_s=0)
    try:
        wait_for(lambda: release.get(f"/effects/{key}"), lambda effect: effect["effects"] == 1, 60)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{release.diagnosis('worker')}") from None


def test_a_killed_workers_job_is_redelivered_within_the_bound(release: Release):
    key = f"killed-{uuid.uuid4().hex[:6]}"
    release.post_job(task="demo", key=key, sleep_s=8)
    wait_for(lambda: release.get(f"/effects/{key}")["attempts"], lambda attempts: attempts == 1, 30)
    killed = dt.datetime.now(dt.UTC)
    for pod in release.pods("worker"):
        kubectl("-n", release.namespace, "delete", "pod", pod.metadata.name, "--grace-period=0", "--force")
    wait_for(lambda: release.get(f"/effects/{key}")["effects"], lambda n: n == 1, REDELIVERY_BOUND_S)
    MEASUREMENTS.append(
        f"{release.lib}: the killed workers' job done again"
        f" {(dt.datetime.now(dt.UTC) - killed).total_seconds():.0f} s later (bound {REDELIVERY_BOUND_S} s)"
    )
    assert release.get(f"/effects/{key}")["attempts"] == 2


def test_two_schedulers_fire_each_slot_once(release: Release):
    scheduler = f"deploy/{release.deployment('scheduler')}"
    kubectl("-n", release.namespace, "scale", scheduler, "--replicas=2")
    try:
        kubectl("-n", release.namespace, "rollout", "status", scheduler, "--timeout=3m", timeout=200)
        assert len([p for p in release.pods("scheduler") if p.status.phase == "Running"]) == 2
        before = release.get("/ticks")
        time.sleep(TICK_INTERVAL_S * 6)
        after = release.get("/ticks")
        slots, runs = after["slots"] - before["slots"], after["runs"] - before["runs"]
        assert slots >= 4, (before, after)
        # Counted from `before`: a tick in flight when an earlier test killed the workers was
        # rightly run again (at least once), and is no double fire.
        assert runs == slots, (before, after)
    finally:
        kubectl("-n", release.namespace, "scale", scheduler, "--replicas=1")
