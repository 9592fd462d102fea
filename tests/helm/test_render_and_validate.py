"""Every chart lints and renders under Helm 3 and 4, and every object it renders is valid for the
oldest and newest Kubernetes it supports, CRDs (KEDA, Prometheus Operator) included."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.helm.render import HELM_VERSIONS, VALUES_FILES, lint, render

# The oldest and newest Kubernetes the charts support (Chart.yaml kubeVersion: >=1.30, for the
# preStop sleep action).
KUBERNETES_VERSIONS = ["1.30.0", "1.35.0"]
VALUE_SETS = [(), *((name,) for name in VALUES_FILES)]
CRDS = Path(__file__).parent / "crds"


@pytest.mark.parametrize("files", VALUE_SETS, ids=lambda f: f[0] if f else "defaults")
@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_helm_lint_strict_passes(lib: str, version: str, files: tuple[str, ...]):
    result = lint(lib, files, version)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout


@pytest.mark.parametrize("files", VALUE_SETS, ids=lambda f: f[0] if f else "defaults")
def test_helm_3_and_4_render_the_same_objects(lib: str, files: tuple[str, ...]):
    def comparable(objects: list[dict]) -> list[dict]:
        # Generated passwords differ from render to render.
        return [{**o, "data": None} if o["kind"] == "Secret" else o for o in objects]

    old, new = (comparable(render(lib, files=files, version=v)) for v in HELM_VERSIONS)
    assert old == new and len(new) > 10


@pytest.mark.parametrize("files", VALUE_SETS, ids=lambda f: f[0] if f else "defaults")
@pytest.mark.parametrize("kubernetes", KUBERNETES_VERSIONS)
def test_every_builtin_object_is_valid_for_kubernetes(lib: str, kubernetes: str, files: tuple[str, ...]):
    builtin = [o for o in render(lib, files=files) if o["kind"] not in CRD_SCHEMAS]
    for obj in builtin:
        try:
            kubernetes_validate.validate(obj, kubernetes, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(
                f"{obj['kind']} {obj['metadata']['name']} on {kubernetes}: {error.message} at {error.path}"
            )


@pytest.mark.parametrize("files", VALUE_SETS, ids=lambda f: f[0] if f else "defaults")
def test_every_custom_resource_is_valid_for_its_vendored_crd(lib: str, files: tuple[str, ...]):
    for obj in render(lib, files=files):
        if schema := CRD_SCHEMAS.get(obj["kind"]):
            api_version = obj["apiVersion"]
            assert api_version in schema, (
                f"{obj['kind']} {api_version} is not served (served: {list(schema)})"
            )
            errors = sorted(jsonschema.Draft7Validator(schema[api_version]).iter_errors(obj), key=str)
            assert not errors, (
                f"{obj['kind']} {obj['metadata']['name']}: {errors[0].message} at {errors[0].json_path}"
            )


def test_the_all_features_values_render_every_custom_resource_kind_somewhere():
    """Otherwise the CRD validation above would pass vacuously."""
    kinds = {o["kind"] for lib in ("celery", "rq", "arq") for o in render(lib, files=("all-features",))}
    assert set(CRD_SCHEMAS) <= kinds


def test_the_crd_check_rejects_a_misspelt_field():
    """The API server prunes (or, with strict field validation, refuses) unknown fields of a
    custom resource; the vendored schemas are made strict so a typo is caught here."""
    scaled = next(o for o in render("celery", files=("all-features",)) if o["kind"] == "ScaledObject")
    scaled["spec"]["minReplicas"] = scaled["spec"].pop("minReplicaCount")
    assert not jsonschema.Draft7Validator(CRD_SCHEMAS["ScaledObject"]["keda.sh/v1alpha1"]).is_valid(scaled)


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """An openAPIV3Schema, with unknown properties refused wherever the CRD lists the known ones
    (as the API server's strict field validation does) and Kubernetes' int-or-string allowed."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if schema.pop("x-kubernetes-int-or-string", False):
            schema.pop("type", None)
            schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [strict(item) for item in schema]
    return schema


@functools.cache
def _crd_schemas() -> dict[str, dict[str, dict]]:
    schemas: dict[str, dict[str, dict]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for served in (v for v in crd["spec"]["versions"] if v["served"]):
            schema = strict(served["schema"]["openAPIV3Schema"])
            # Every object carries apiVersion, kind and metadata; the CRD leaves metadata open.
            schema["properties"]["metadata"] = {"type": "object"}
            schemas.setdefault(kind, {})[f"{group}/{served['name']}"] = schema
    return schemas


CRD_SCHEMAS = _crd_schemas()


def test_vendored_crds_are_named_after_their_release():
    for path in CRDS.glob("*.yaml"):
        assert re.fullmatch(r"[a-z-]+-\d+\.\d+\.\d+_[a-z]+\.yaml", path.name), path.name
