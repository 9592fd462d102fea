"""A user's own repository adopts the toolkit by the library guide's commands, builds its own image
and runs the included compose file: a job once, a transient failure retried, a poison job dead
and requeued, SIGTERM drained, its periodic job once per slot with two schedulers, a job
killed by SIGKILL redone with one row, and Prometheus with the toolkit's alerts on its exporter.
Not the contract suite again: what adoption must keep."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MEASUREMENTS, REPO
from tests.integration.stack import docker_env, wait_for
from tests.promtool import alert_rules
from tests.services import image_variables

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
FIXTURES = sorted(p.name for p in HERE.iterdir() if (p / "Dockerfile").exists())
# Short for a test run: a time limit the SIGKILL redelivery is measured against, its grace period.
SETTINGS = {
    "TASKQ_IMAGE": "shop:dev",
    "TASKQ_MONITOR_PASSWORD": "monitor-secret",
    "TASKQ_MONITOR_PORT": "",
    "JOB_TIME_LIMIT_S": "6",
    "STOP_GRACE_PERIOD_S": "36",
    "HEALTHCHECK_INTERVAL": "2s",
}
# What each shop's deploy/taskq/.env names, as its guide says.
APPS = {
    "celery": {"TASKQ_APP": "shop.celery_app:app"},
    "rq": {"TASKQ_APP": "shop.jobs:jobs"},
    "dramatiq": {
        "TASKQ_APP": "shop.tasks:broker",
        "TASKQ_WORKER_MODULES": "shop.tasks",
        "TASKQ_SCHEDULE": "shop.tasks:schedule",
    },
    "arq": {"TASKQ_APP": "shop.worker:WorkerSettings"},
}
REPORT_EVERY_S = 2


def guide_steps(lib: str) -> str:
    """The shell block the library's README marks as the adoption steps."""
    text = (REPO / "recipes" / "taskq" / lib / "README.md").read_text()
    match = re.search(r"<!-- adopt-steps:[^>]*-->\n```sh\n(.*?)```", text, re.S)
    assert match, f"recipes/taskq/{lib}/README.md has no adopt-steps block"
    return match.group(1)


def base_image(tmp: Path) -> str:
    """The Python image the shop builds FROM: the host's extra CA certificates added (pip reaches
    PyPI through a TLS-inspecting proxy here), as a user's base image behind one would have."""
    python_image = image_variables()["PYTHON_IMAGE"]
    certificates = sorted((REPO / ".build" / "extra-ca").glob("*.crt"))
    if not certificates:
        return python_image
    context = tmp / "base"
    context.mkdir()
    for certificate in certificates:
        shutil.copy(certificate, context)
    (context / "Dockerfile").write_text(
        f"FROM {python_image}\nUSER root\nCOPY *.crt /usr/local/share/ca-certificates/\n"
        "RUN update-ca-certificates >/dev/null\nENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt\n"
    )
    subprocess.run(["docker", "build", "-q", "-t", "taskq-adoption/python:base", str(context)], check=True)
    return "taskq-adoption/python:base"


class Shop:
    def __init__(self, root: Path, lib: str, env: dict[str, str]) -> None:
        self.root, self.lib, self.env = root, lib, env
        self.killed_at = 0.0  # when a test SIGKILLed the worker mid-job (time.monotonic())

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["docker", "compose", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)}: {result.stderr[-2000:]}")
        return result

    def sql(self, query: str) -> list[list[str]]:
        out = self.compose("exec", "-T", "db", "psql", "-U", "shop", "-At", "-F", "\t", "-c", query).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def count(self, query: str) -> int:
        return int(self.sql(query)[0][0])

    def enqueue(self, function: str, *args: object, **kwargs: object) -> str:
        body = json.dumps({"args": list(args), "kwargs": kwargs})
        post = (
            "import sys, urllib.request as u; r = u.Request('http://127.0.0.1:8000/jobs/' + sys.argv[1], "
            "data=sys.argv[2].encode(), headers={'content-type': 'application/json'}); "
            "print(u.urlopen(r, timeout=10).read().decode())"
        )
        return json.loads(self.compose("exec", "-T", "web", "python", "-c", post, function, body).stdout)[
            "id"
        ]

    def runs(self, task: str, key: str) -> int:
        return self.count(f"SELECT count(*) FROM runs WHERE task = '{task}' AND key = '{key}'")  # noqa: S608

    def taskq(self, *args: str) -> str:
        return self.compose("exec", "-T", "taskq-worker", "taskq", *args).stdout

    def dead(self) -> dict[str, dict]:
        return {letter["id"]: letter for letter in json.loads(self.taskq("dlq", "list", "--json"))}


@pytest.fixture(scope="module", params=FIXTURES)
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    lib = request.param
    if lib not in request.config.getoption("--stacks").split():
        pytest.skip(f"--stacks leaves out {lib}")
    tmp = tmp_path_factory.mktemp(f"adoption-{lib}")
    root = tmp / "shop"
    shutil.copytree(HERE / lib, root, ignore=shutil.ignore_patterns("__pycache__"))
    commit = ["git", "-c", "user.name=shop", "-c", "user.email=shop@example.com", "commit", "-qm", "shop"]
    for command in (["git", "init", "-q"], ["git", "add", "-A"], commit):
        subprocess.run(command, cwd=root, check=True)
    env = {
        **docker_env(),
        **image_variables(),
        "PYTHON_IMAGE": base_image(tmp),
        "COMPOSE_PROJECT_NAME": f"taskq-adoption-{lib}",
        "TOOLKIT": str(REPO),
        "SHOP_REPORT_EVERY_S": str(REPORT_EVERY_S),
    }
    started = time.monotonic()
    subprocess.run(["bash", "-euo", "pipefail", "-c", guide_steps(lib)], cwd=root, env=env, check=True)
    settings = root / "deploy" / "taskq" / ".env"
    values = {**SETTINGS, **APPS[lib]}
    kept = [line for line in settings.read_text().splitlines() if line.split("=", 1)[0] not in values]
    settings.write_text("\n".join([*kept, *(f"{k}={v}" for k, v in values.items())]) + "\n")
    with (root / ".env").open("a") as user_env:
        user_env.write(f"SHOP_REPORT_EVERY_S={REPORT_EVERY_S}\n")
    shop = Shop(root, lib, env)
    try:
        shop.compose("up", "--build", "--detach", "--wait", timeout=900)
        MEASUREMENTS.append(
            f"adoption {lib}: guide, own image built, stack healthy in {time.monotonic() - started:.0f} s"
        )
        yield shop
    finally:
        # With the profile, so that its Prometheus and volume go too.
        down = ("down", "--volumes", "--remove-orphans", "--timeout", "5")
        shop.compose("--profile", "taskq-monitoring", *down, check=False)
        subprocess.run(["docker", "image", "rm", "-f", "shop:dev"], capture_output=True, check=False)


def test_the_adoption_changed_no_file_of_the_repository_but_the_ones_the_guide_says(shop: Shop):
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=shop.root, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    changed = sorted(line[3:] for line in status if not line.startswith("??"))
    assert changed == [".dockerignore", ".env", "compose.yaml", "requirements.txt"], status


def test_a_job_runs_once(shop: Shop):
    shop.enqueue("send_receipt", "order-1")
    wait_for(lambda: shop.count("SELECT count(*) FROM receipts WHERE order_id = 'order-1'"), bool, timeout=30)
    time.sleep(1)
    assert shop.runs("send_receipt", "order-1") == 1
    assert shop.count("SELECT count(*) FROM receipts WHERE order_id = 'order-1'") == 1


def test_a_transient_failure_is_retried_and_then_succeeds(shop: Shop):
    job = shop.enqueue("sync_stock", "sku-1", fail_times=1)
    wait_for(lambda: shop.runs("sync_stock", "sku-1"), lambda runs: runs >= 2, timeout=30)
    time.sleep(2)
    assert shop.runs("sync_stock", "sku-1") == 2
    assert job not in shop.dead()


def test_a_poison_job_is_dead_at_once_and_requeued_with_taskq(shop: Shop):
    job = shop.enqueue("import_feed", "https://feeds.example/broken")
    letter = wait_for(shop.dead, lambda dead: job in dead, timeout=30)[job]
    assert "cannot parse" in letter["error"]
    assert shop.runs("import_feed", "https://feeds.example/broken") == 1
    shop.taskq("dlq", "requeue", job)
    wait_for(
        lambda: shop.runs("import_feed", "https://feeds.example/broken"), lambda runs: runs == 2, timeout=30
    )
    assert job in wait_for(shop.dead, lambda dead: job in dead, timeout=30)


def test_a_worker_killed_mid_job(shop: Shop):
    """SIGKILL while a receipt is being written. Its redelivery waits for the job's lease or
    visibility timeout, so the tests below run meanwhile, and the last one checks it. After the
    retry tests: RQ's killed worker held the lock of RQ's scheduler for retries, which lapses
    only after 61 s, and a new worker asks for it again at its next maintenance pass (every
    RQ_MAINTENANCE_INTERVAL_S, 15 s)."""
    shop.enqueue("send_receipt", "order-3", 4)
    wait_for(lambda: shop.runs("send_receipt", "order-3"), lambda runs: runs == 1, timeout=30, interval=0.1)
    shop.compose("kill", "--signal", "SIGKILL", "taskq-worker")
    shop.killed_at = time.monotonic()
    assert shop.count("SELECT count(*) FROM receipts WHERE order_id = 'order-3'") == 0  # cut short
    shop.compose("up", "--detach", "--wait", "taskq-worker")


def test_sigterm_lets_the_running_job_finish(shop: Shop):
    shop.enqueue("send_receipt", "order-2", 3)
    wait_for(lambda: shop.runs("send_receipt", "order-2"), lambda runs: runs == 1, timeout=30, interval=0.1)
    worker = shop.compose("ps", "-q", "taskq-worker").stdout.strip()
    shop.compose("stop", "taskq-worker", timeout=120)
    state = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.ExitCode}}", worker], capture_output=True, text=True, check=True
    )
    assert state.stdout.strip() == "0"
    assert shop.count("SELECT count(*) FROM receipts WHERE order_id = 'order-2'") == 1
    shop.compose("start", "taskq-worker")
    shop.compose("up", "--detach", "--wait", "taskq-worker")


def test_two_schedulers_fire_each_slot_once(shop: Shop):
    shop.compose(
        "up", "--detach", "--wait", "--no-recreate", "--scale", "taskq-scheduler=2", "taskq-scheduler"
    )
    try:
        since = int(time.time()) + REPORT_EVERY_S
        time.sleep(REPORT_EVERY_S * 6)
        until = int(time.time()) - REPORT_EVERY_S * 2  # the last slots' runs may still be on their way
        query = f"SELECT slot, count(*) FROM reports WHERE slot BETWEEN {since} AND {until} GROUP BY slot"  # noqa: S608
        rows = shop.sql(query)
        slots = {int(slot): int(n) for slot, n in rows}
        assert len(slots) >= 3, rows
        assert set(slots.values()) == {1}, rows
    finally:
        shop.compose(
            "up", "--detach", "--wait", "--no-recreate", "--scale", "taskq-scheduler=1", "taskq-scheduler"
        )


def test_the_monitoring_profile_scrapes_the_exporter_and_loads_the_alerts(shop: Shop):
    """With the profile the adoption's .env.example names, its Prometheus scrapes its exporter, which
    reads the shop's Redis, and loads every toolkit alert, from the folder `make adopt` wrote."""

    def prometheus(path: str) -> dict:
        url = f"http://127.0.0.1:9090/api/v1/{path}"
        answer = json.loads(shop.compose("exec", "-T", "taskq-prometheus", "wget", "-qO-", url).stdout)
        assert answer["status"] == "success", answer
        return answer["data"]

    shop.compose("--profile", "taskq-monitoring", "up", "--detach", "--wait", "taskq-prometheus", timeout=300)
    try:
        targets = wait_for(
            lambda: prometheus("targets")["activeTargets"],
            lambda found: found and all(t["health"] == "up" for t in found),
            timeout=60,
            interval=1,
        )
        assert [t["labels"]["instance"] for t in targets] == ["taskq-exporter:9808"]
        info = wait_for(lambda: prometheus("query?query=taskq_exporter_info")["result"], bool, timeout=30)
        assert info[0]["metric"]["library"].lower() == shop.lib
        loaded = [rule for group in prometheus("rules?type=alert")["groups"] for rule in group["rules"]]
        assert sorted(rule["name"] for rule in loaded) == sorted(rule["alert"] for rule in alert_rules())
        assert all(rule["health"] == "ok" for rule in loaded), loaded
    finally:
        # Only this test needs it, and the machine has two CPUs.
        shop.compose("--profile", "taskq-monitoring", "rm", "--stop", "--force", "taskq-prometheus")


def test_the_killed_job_is_redone_within_the_bound_and_writes_one_row(shop: Shop):
    bound = 2 * int(SETTINGS["JOB_TIME_LIMIT_S"]) + 120
    left = shop.killed_at + bound - time.monotonic()
    receipts = "SELECT count(*) FROM receipts WHERE order_id = 'order-3'"
    wait_for(lambda: shop.count(receipts), bool, timeout=max(left, 1), interval=1)
    redone_after = time.monotonic() - shop.killed_at
    MEASUREMENTS.append(f"adoption {shop.lib}: SIGKILLed job done again {redone_after:.0f} s after the kill")
    time.sleep(1)
    assert shop.runs("send_receipt", "order-3") >= 2
    assert shop.count(receipts) == 1
