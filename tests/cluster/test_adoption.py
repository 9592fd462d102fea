"""An adoption shop (tests/adoption/arq/, FastAPI and Arq) on the test cluster: adopted by its
guide's commands, its own image built, and the adopted chart installed with the values the shop
fills in (no demo app or payment stand-in, its image and commands, its migration, its own test).
`helm install --wait` and `helm test` pass, and a job the shop's code enqueues runs once."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml
from kubernetes import client

from tests.adoption.test_adoption import HERE as SHOPS
from tests.adoption.test_adoption import base_image, guide_steps
from tests.cluster.conftest import RESTRICTED, helm_cli, kubectl, load_images
from tests.cluster.test_charts import bind_volumes, image_values
from tests.conftest import MEASUREMENTS, REPO
from tests.integration.stack import docker_env, wait_for
from tests.services import image_variables

pytestmark = pytest.mark.cluster

LIB = "arq"
IMAGE = "taskq-adoption/shop-arq:dev"
APP = "shop.worker:WorkerSettings"


def shop_values() -> dict:
    """deploy/taskq/helm/arq-values.yaml as the shop fills it in."""
    # The shop reads whole URLs (as most apps do); the chart gives the parts (hosts in its
    # ConfigMap, passwords from its Secrets), which Kubernetes joins with $(…).
    app_env = {
        "TASKQ_APP": APP,
        "REDIS_URL": "redis://:$(REDIS_PASSWORD)@$(REDIS_HOST):$(REDIS_PORT)/0",
        "DATABASE_URL": "postgresql://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@$(POSTGRES_HOST):5432/$(POSTGRES_DB)",
    }
    repository, tag = IMAGE.rsplit(":", 1)
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "jobs": {"timeLimitSeconds": 10},
        "app": {"enabled": False},
        "psp": {"enabled": False},
        "migrate": {"command": ["python", "-m", "shop.migrate"]},
        "worker": {"replicas": 1, "command": ["python", "-m", "taskq.arq", "worker", APP], "env": app_env},
        "scheduler": {"command": ["python", "-m", "taskq.arq", "scheduler", APP], "env": app_env},
        "monitor": {"env": app_env},
        "exporter": {"env": app_env},
        # Tried for up to 30 s: a new pod's first connections can be refused until the
        # NetworkPolicy controller has admitted it (kube-router here; other CNIs lag too).
        "tests": {
            "command": ["sh", "-c", "for i in $(seq 15); do taskq depth && exit 0; sleep 2; done; exit 1"]
        },
    }


@dataclass
class InstalledShop:
    namespace: str

    def python(self, code: str, *args: str) -> str:
        """Python in a worker pod: the shop's image, modules and settings."""
        worker = f"deployment/jobs-{LIB}-worker"
        return kubectl("exec", "-n", self.namespace, worker, "--", "python", "-c", code, *args).stdout


@pytest.fixture(scope="module")
def shop(api: client.ApiClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstalledShop]:
    tmp = tmp_path_factory.mktemp("cluster-shop")
    root = tmp / "shop"
    shutil.copytree(SHOPS / LIB, root, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**docker_env(), "TOOLKIT": str(REPO)}
    subprocess.run(["bash", "-euo", "pipefail", "-c", guide_steps(LIB)], cwd=root, env=env, check=True)
    base = base_image(tmp)
    subprocess.run(
        ["docker", "build", "-q", "-t", IMAGE, "--build-arg", f"PYTHON_IMAGE={base}", str(root)],
        env=env, capture_output=True, check=True,
    )  # fmt: skip
    variables = image_variables()
    load_images(IMAGE, variables["REDIS_IMAGE"], variables["POSTGRES_IMAGE"])
    values = root / "deploy" / "taskq" / "helm" / "shop-values.yaml"
    values.write_text(yaml.safe_dump(shop_values()))
    chart = root / "deploy" / "taskq" / "helm" / LIB
    core = client.CoreV1Api(api)
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace, "labels": RESTRICTED}})
    volumes = bind_volumes(api, LIB, namespace)
    try:
        started = time.monotonic()
        helm_cli(
            "install", "jobs", str(chart), "--namespace", namespace, "-f", str(values),
            *image_values("redis", "REDIS_IMAGE"), *image_values("postgres", "POSTGRES_IMAGE"),
            "--wait", "--timeout", "6m", timeout=420,
        )  # fmt: skip
        MEASUREMENTS.append(
            f"adoption {LIB} on the cluster: helm install --wait done in {time.monotonic() - started:.0f} s"
        )
        yield InstalledShop(namespace)
    except AssertionError:
        # What a failed install left: the pods, and the worker's migration and own output.
        print(kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout)
        for container in ("migrate", "worker"):
            logs = ("logs", "-n", namespace, f"deployment/jobs-{LIB}-worker", "-c", container, "--tail=30")
            print(container, kubectl(*logs, check=False).stdout)
        raise
    finally:
        core.delete_namespace(namespace)
        wait_for(
            lambda: {n.metadata.name for n in core.list_namespace().items},
            lambda ns: namespace not in ns,
            180,
            1,
        )
        for name in volumes:
            core.delete_persistent_volume(name)


def test_no_demo_runs_only_the_shops_image(shop: InstalledShop, api: client.ApiClient):
    pods = client.CoreV1Api(api).list_namespaced_pod(shop.namespace).items
    components = {p.metadata.labels.get("app.kubernetes.io/component") for p in pods}
    assert "app" not in components and "psp" not in components, components
    ours = {"worker", "scheduler", "monitor", "exporter"}
    assert ours <= components, components
    images = {
        c.image
        for p in pods
        if p.metadata.labels.get("app.kubernetes.io/component") in ours
        for c in p.spec.containers
    }
    assert images == {IMAGE}, images


def test_helm_test_runs_the_shops_own_check(shop: InstalledShop):
    try:
        helm_cli("test", "jobs", "--namespace", shop.namespace, "--timeout", "3m", timeout=240)
    except AssertionError:
        print(kubectl("logs", "-n", shop.namespace, f"jobs-{LIB}-test", check=False).stdout)
        raise


def test_a_job_the_shop_enqueues_runs_once(shop: InstalledShop):
    order = f"k8s-{uuid.uuid4().hex[:6]}"
    shop.python(
        "import asyncio, taskq.arq\n"
        "async def main():\n"
        "    pool = await taskq.arq.create_pool()\n"
        f"    await pool.enqueue_job('send_receipt', {order!r})\n"
        "    await pool.aclose()\n"
        "asyncio.run(main())"
    )
    count = (
        "import os, sys, psycopg; c = psycopg.connect(os.environ['DATABASE_URL']); k = sys.argv[1]; "
        "print(c.execute('SELECT (SELECT count(*) FROM receipts WHERE order_id = %s), "
        "(SELECT count(*) FROM runs WHERE key = %s)', (k, k)).fetchone())"
    )
    assert wait_for(
        lambda: shop.python(count, order).strip(), lambda out: out == "(1, 1)", timeout=60, interval=2
    )
    time.sleep(2)
    assert shop.python(count, order).strip() == "(1, 1)"
