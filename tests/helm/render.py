"""`helm template` and `helm lint` of the charts, with the pinned Helm binaries (`make helm-tools`)."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

HELM_DIR = REPO / "helm"
# The Helm versions the charts are checked with (scripts/helm-tools.sh fetches both).
HELM_VERSIONS = ["3.17.3", "4.1.4"]
DEFAULT_HELM = "4.1.4"
# Besides the defaults, each chart's ci/*-values.yaml (every feature on; external datastores;
# your own app's images, commands, Secrets and volumes, without the demo).
VALUES_FILES = ["all-features", "external-datastores", "own-app"]
NAMESPACE = "jobs"
RELEASE = "demo"


class RenderError(Exception):
    """helm refused the values (schema) or a template guard failed; str() is helm's message."""


def helm(version: str = DEFAULT_HELM) -> Path:
    binary = REPO / ".tools" / f"helm-{version}" / "helm"
    if not binary.exists():
        raise FileNotFoundError(f"{binary} is missing: run `make helm-tools`")
    return binary


def values_file(chart: str, name: str) -> Path:
    return HELM_DIR / chart / "ci" / f"{name}-values.yaml"


def render(
    chart: str, values: dict[str, Any] | None = None, files: tuple[str, ...] = (), version: str = DEFAULT_HELM
) -> list[dict[str, Any]]:
    """The chart's rendered objects (test hooks included), for a values dict and ci files."""
    return [dict(o) for o in _render(chart, json.dumps(values or {}, sort_keys=True), files, version)]


@functools.cache
def _render(chart: str, values_json: str, files: tuple[str, ...], version: str) -> tuple[dict, ...]:
    args = [str(helm(version)), "template", RELEASE, str(HELM_DIR / chart), "--namespace", NAMESPACE]
    for name in files:
        args += ["--values", str(values_file(chart, name))]
    result = subprocess.run(
        [*args, "--values", "-"], input=values_json, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def lint(chart: str, files: tuple[str, ...] = (), version: str = DEFAULT_HELM) -> subprocess.CompletedProcess:
    args = [str(helm(version)), "lint", "--strict", str(HELM_DIR / chart)]
    for name in files:
        args += ["--values", str(values_file(chart, name))]
    return subprocess.run(args, capture_output=True, text=True, check=False)


def find(objects: list[dict], kind: str, component: str | None = None) -> list[dict]:
    return [
        o
        for o in objects
        if o["kind"] == kind
        and (component is None or o["metadata"]["labels"].get("app.kubernetes.io/component") == component)
    ]


def one(objects: list[dict], kind: str, component: str | None = None) -> dict:
    found = find(objects, kind, component)
    assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
    return found[0]


def pod_specs(objects: list[dict]) -> list[tuple[str, dict]]:
    """(name, pod spec) of every workload and pod."""
    specs = []
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            specs.append((o["metadata"]["name"], o["spec"]["template"]["spec"]))
        elif o["kind"] == "Pod":
            specs.append((o["metadata"]["name"], o["spec"]))
    return specs


def containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def config_env(objects: list[dict]) -> dict[str, str]:
    return one(objects, "ConfigMap", "config")["data"]


def notes(chart: str, files: tuple[str, ...] = ()) -> str:
    """NOTES.txt as `helm install` prints it (Helm 4 renders it without a cluster)."""
    args = [
        str(helm(DEFAULT_HELM)),
        "install",
        RELEASE,
        str(HELM_DIR / chart),
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
        *(arg for name in files for arg in ("--values", str(values_file(chart, name)))),
    ]
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    return result.stdout.partition("\nNOTES:\n")[2]
