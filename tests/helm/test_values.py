"""The values every chart takes: one shape for all four, a strict schema that describes every key,
bad values refused with a message, and a values reference that matches the schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ALL_STACKS, REPO
from tests.helm.render import HELM_DIR, HELM_VERSIONS, RenderError, render

SCHEMA = json.loads((HELM_DIR / "taskq-common" / "schema" / "values.schema.json").read_text())


def keys(node: Any, prefix: str = "") -> set[str]:
    if not isinstance(node, dict):
        return set()
    found = set()
    for key, value in node.items():
        found.add(prefix + key)
        # maps of free-form keys (env, resources, labels, selectors) are values, not shape
        if key not in (
            "env",
            "requests",
            "limits",
            "podLabels",
            "labels",
            "nodeSelector",
            "podAnnotations",
            "affinity",
        ):
            found |= keys(value, f"{prefix}{key}.")
    return found


def test_the_four_charts_take_values_of_the_same_shape():
    shapes = {lib: keys(yaml.safe_load((HELM_DIR / lib / "values.yaml").read_text())) for lib in ALL_STACKS}
    assert all(shape == shapes["celery"] for shape in shapes.values())


def test_the_four_charts_share_their_templates_but_the_library_facts():
    def templates(lib: str) -> dict[str, str]:
        root = HELM_DIR / lib / "templates"
        return {
            str(p.relative_to(root)): p.read_text()
            for p in root.rglob("*")
            if p.is_file() and p.name != "_library.tpl"
        }

    assert all(templates(lib) == templates("celery") for lib in ALL_STACKS)
    assert all((HELM_DIR / lib / "templates" / "_library.tpl").exists() for lib in ALL_STACKS)


def test_every_chart_uses_the_one_shared_schema():
    for lib in ALL_STACKS:
        assert (
            HELM_DIR / lib / "values.schema.json"
        ).resolve() == HELM_DIR / "taskq-common" / "schema" / "values.schema.json"


def test_every_schema_key_is_described_and_every_object_refuses_unknown_keys():
    def walk(node: dict, path: str) -> None:
        assert node.get("description"), f"{path} has no description"
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}")

    for key, child in SCHEMA["properties"].items():
        walk(child, key)


def test_every_default_value_is_in_the_schema(lib: str):
    """The schema is strict, so a default it lacked would fail every render: check it directly."""
    import jsonschema

    jsonschema.Draft7Validator(SCHEMA).validate(yaml.safe_load((HELM_DIR / lib / "values.yaml").read_text()))


@pytest.mark.parametrize("version", HELM_VERSIONS)
@pytest.mark.parametrize(
    "values,where",
    [
        ({"workers": {"replicas": 3}}, "workers"),
        ({"worker": {"replica": 3}}, "replica"),
        ({"worker": {"keda": {"enable": True}}}, "enable"),
        ({"jobs": {"timeLimitSeconds": "300s"}}, "timeLimitSeconds"),
        ({"jobs": {"timeLimitSeconds": 0}}, "timeLimitSeconds"),
        ({"worker": {"env": {"WORKER_CONCURRENCY": 4}}}, "WORKER_CONCURRENCY"),
        ({"worker": {"command": "celery worker"}}, "command"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"app": {"service": {"type": "LoadBalancer"}}}, "type"),
    ],
    ids=[
        "unknown-top-level",
        "unknown-nested",
        "unknown-deep",
        "string-for-int",
        "zero-limit",
        "non-string-env",
        "shell-string-command",
        "bad-enum",
        "service-type",
    ],
)
def test_bad_values_are_refused_by_the_schema_naming_the_key(
    lib: str, version: str, values: dict, where: str
):
    with pytest.raises(RenderError, match="schema") as refused:
        render(lib, values, version=version)
    assert where in str(refused.value)


def test_the_values_reference_in_each_readme_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "helm-docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_chart_redis_and_postgres_images_are_the_compose_stacks(lib: str):
    compose = (REPO / "compose" / lib / "compose.yaml").read_text()
    values = yaml.safe_load((HELM_DIR / lib / "values.yaml").read_text())
    for store, variable in (("redis", "REDIS_IMAGE"), ("postgres", "POSTGRES_IMAGE")):
        image = values[store]["image"]
        assert f"${{{variable}:-{image['repository']}:{image['tag']}}}" in compose


def test_chart_files_exist(lib: str):
    for name in (
        "Chart.yaml",
        "values.yaml",
        "README.md",
        "templates/NOTES.txt",
        "ci/all-features-values.yaml",
    ):
        assert (HELM_DIR / lib / name).exists(), name
    assert Path(HELM_DIR / lib / "charts" / "taskq-common").resolve() == HELM_DIR / "taskq-common"
