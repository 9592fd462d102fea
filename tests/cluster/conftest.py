"""The cluster tests' fixtures: a client for the cluster `make cluster-up` started (KUBECONFIG),
kubectl and Helm as a user runs them, and namespaces that enforce Pod Security `restricted`."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from tests.conftest import REPO
from tests.helm.render import HELM_DIR, helm

KUBECTL = os.environ.get("TASKQ_KUBECTL", "kubectl")


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    path = os.environ.get("KUBECONFIG", "")
    if not path or not Path(path).is_file():
        pytest.fail(
            f"KUBECONFIG={path!r} names no file: run these tests with `make test-cluster`, which starts "
            "the cluster (`make cluster-up`) and points KUBECONFIG at it"
        )
    return path


@pytest.fixture(scope="session")
def api(kubeconfig: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture(scope="session")
def dynamic(api: client.ApiClient) -> DynamicClient:
    return DynamicClient(api)


def run(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """A command as a user types it (kubectl, helm), its output captured; a failure shows stderr."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def kubectl(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(KUBECTL, *args, **kwargs)


def helm_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(str(helm()), *args, **kwargs)


RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
# A non-root, read-only container as Pod Security `restricted` requires.
RESTRICTED_CONTAINER = {
    "imagePullPolicy": "Never",
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


@pytest.fixture
def restricted_namespace(api: client.ApiClient) -> Iterator[Callable[[str], str]]:
    """A factory of namespaces that enforce Pod Security `restricted` (and warn about it), as a
    production cluster's would; each is deleted after the test."""
    core, made = client.CoreV1Api(api), []

    def make(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=RESTRICTED)))
        made.append(name)
        # Its `default` ServiceAccount, which pods without one of their own need, is made by
        # the controller manager when one runs; made here otherwise.
        try:
            core.create_namespaced_service_account(
                name, client.V1ServiceAccount(metadata={"name": "default"})
            )
        except ApiException as error:
            if error.status != 409:
                raise
        return name

    yield make
    for name in made:
        core.delete_namespace(name, propagation_policy="Background")


def load_images(*images: str) -> None:
    """Images from Docker into the cluster's containerd (the cluster pulls nothing)."""
    run(str(REPO / "scripts" / "cluster" / "load-images.sh"), *images, timeout=600)


def readme_install_args(lib: str, namespace: str, *extra: str) -> list[str]:
    """`helm install`'s arguments as the README gives them, with the images `make` builds."""
    return [
        "jobs", str(HELM_DIR / lib), "--namespace", namespace,
        "--set", f"image.repository=taskq/{lib}", "--set", "image.tag=dev", *extra,
    ]  # fmt: skip


def opaque_secrets(api: client.ApiClient, namespace: str) -> dict[str, dict[str, str]]:
    """The namespace's Secrets of type Opaque (the chart's; not Helm's release records), by name."""
    items = client.CoreV1Api(api).list_namespaced_secret(namespace).items
    return {s.metadata.name: s.data for s in items if s.type == "Opaque"}


def wait_for_phase(core: client.CoreV1Api, namespace: str, name: str, phases: set[str], timeout: float = 120):
    deadline = time.monotonic() + timeout
    while (phase := core.read_namespaced_pod(name, namespace).status.phase) not in phases:
        assert phase in {"Pending", "Running"}, f"pod {name}: {phase}"
        assert time.monotonic() < deadline, f"pod {name} still {phase} after {timeout} s"
        time.sleep(1)
    return phase
