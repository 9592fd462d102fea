"""Install each chart in a real cluster: a job runs, and a worker rollout loses no job.

Runs only with `make test-cluster` and KUBECONFIG pointing at a cluster that can pull
TASKQ_CLUSTER_IMAGE_REPOSITORY/<lib>:TASKQ_CLUSTER_IMAGE_TAG. No cluster can be had where this
toolkit's CI runs, so this has never been run there: it is not counted as verified.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from tests.helm.render import HELM_DIR, helm

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs KUBECONFIG pointing at a cluster"),
]


def run(*args: str, timeout: float = 900) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=timeout).stdout


def test_install_run_a_job_and_roll_the_workers_without_losing_one(lib: str):
    namespace, release = f"taskq-{lib}-{uuid.uuid4().hex[:6]}", "it"
    repository = os.environ.get("TASKQ_CLUSTER_IMAGE_REPOSITORY", "taskq")
    tag = os.environ.get("TASKQ_CLUSTER_IMAGE_TAG", "0.1.0")
    app = f"deploy/{release}-{lib}-app"
    try:
        run(
            str(helm()),
            "install",
            release,
            str(HELM_DIR / lib),
            "--namespace",
            namespace,
            "--create-namespace",
            "--set",
            f"image.repository={repository}/{lib}",
            "--set",
            f"image.tag={tag}",
            "--set",
            "jobs.timeLimitSeconds=30",
            "--wait",
            "--timeout",
            "10m",
        )
        run(str(helm()), "test", release, "--namespace", namespace, "--timeout", "5m")

        def call(path: str, body: dict | None = None) -> dict:
            script = (
                "import json, sys, urllib.request as u; b = sys.argv[2].encode() or None; "
                "h = {'Content-Type': 'application/json'}; "
                "r = u.Request('http://127.0.0.1:8000' + sys.argv[1], b, h); "
                "print(u.urlopen(r, timeout=10).read().decode())"
            )
            return json.loads(
                run(
                    "kubectl",
                    "-n",
                    namespace,
                    "exec",
                    app,
                    "--",
                    "python",
                    "-c",
                    script,
                    path,
                    json.dumps(body) if body else "",
                )
            )

        keys = [f"rollout-{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
        for key in keys:
            call("/jobs", {"task": "demo", "key": key, "sleep_s": 8})
        run("kubectl", "-n", namespace, "rollout", "restart", f"deploy/{release}-{lib}-worker")
        run(
            "kubectl", "-n", namespace, "rollout", "status", f"deploy/{release}-{lib}-worker", "--timeout=10m"
        )
        deadline = time.monotonic() + 300
        while (effects := [call(f"/effects/{key}")["effects"] for key in keys]) != [1] * len(keys):
            assert time.monotonic() < deadline, f"effects after the rollout: {effects}"
            time.sleep(3)
    finally:
        subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false"], check=False)
