"""The charts against a real Kubernetes API server (milestone M0 of the cluster tests): the server
is the version we build, and every object each chart makes, in each ci/ values variant, is
accepted in a namespace that enforces Pod Security `restricted`, as a production cluster's is."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from tests.cluster.conftest import helm_cli, kubectl, opaque_secrets, readme_install_args
from tests.helm.render import HELM_DIR, VALUES_FILES, values_file

pytestmark = pytest.mark.cluster

K8S_MINOR = "1.35"
CRDS = HELM_DIR.parent / "tests" / "helm" / "crds"


def manifest_objects(release: str, namespace: str, what: str = "manifest") -> list[dict]:
    text = helm_cli("get", what, release, "--namespace", namespace).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def pod_templates(objects: list[dict]) -> list[tuple[str, dict]]:
    """(where, pod) for every pod the objects would make, test hooks included: a workload's
    template, with the volumes a StatefulSet's controller adds for its claim templates."""
    pods = []
    for o in objects:
        spec, where = o.get("spec", {}), f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] == "Pod":
            pods.append((where, {"metadata": o["metadata"], "spec": spec}))
            continue
        template = spec.get("jobTemplate", {}).get("spec", {}).get("template") or spec.get("template")
        if not (template and "containers" in template.get("spec", {})):
            continue
        pod_spec = dict(template["spec"])
        claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])]
        if claims:
            pod_spec["volumes"] = [
                *pod_spec.get("volumes", []),
                *({"name": c, "persistentVolumeClaim": {"claimName": f"{c}-admission"}} for c in claims),
            ]
        pods.append((where, {"metadata": template.get("metadata", {}), "spec": pod_spec}))
    return pods


@pytest.fixture(scope="session")
def crds(kubeconfig: str) -> None:
    """The CRDs of KEDA and the Prometheus Operator, which the all-features values use."""
    kubectl("apply", "--server-side", "-f", str(CRDS))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS))


def test_the_api_server_and_kubectl_are_the_kubernetes_we_build(api: client.ApiClient):
    versions = json.loads(kubectl("version", "--output=json").stdout)
    assert versions["serverVersion"]["gitVersion"].startswith(f"v{K8S_MINOR}."), versions
    assert versions["clientVersion"]["gitVersion"] == versions["serverVersion"]["gitVersion"], versions
    server = client.VersionApi(api).get_code()
    assert (server.major, server.minor) == tuple(K8S_MINOR.split(".")), server


def test_a_restricted_namespace_refuses_a_pod_that_runs_as_root(api, restricted_namespace):
    """The control for the tests below: the API server enforces Pod Security."""
    namespace = restricted_namespace("psa")
    pod = {"metadata": {"name": "root"}, "spec": {"containers": [{"name": "c", "image": "taskq/rq:dev"}]}}
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(api).create_namespaced_pod(namespace, pod, dry_run="All")
    assert refused.value.status == 403 and "violates PodSecurity" in refused.value.body


@pytest.mark.parametrize("variant", ["default", *VALUES_FILES])
def test_every_object_of_the_chart_is_accepted_under_restricted_pod_security(
    lib: str, variant: str, api, dynamic: DynamicClient, restricted_namespace: Callable[[str], str], crds
):
    namespace = restricted_namespace(f"{lib}-{variant}")
    extra = [] if variant == "default" else ["--values", str(values_file(lib, variant))]
    installed = helm_cli("install", *readme_install_args(lib, namespace, *extra))
    # The API server's warnings (a pod template that `restricted` would refuse, a deprecated API)
    # reach helm's stderr.
    assert "Warning" not in installed.stderr and "PodSecurity" not in installed.stderr, installed.stderr

    objects = manifest_objects("jobs", namespace)
    assert objects
    for o in objects:
        resource = dynamic.resources.get(api_version=o["apiVersion"], kind=o["kind"])
        found = resource.get(name=o["metadata"]["name"], namespace=namespace if resource.namespaced else None)
        assert found.metadata.uid, o["metadata"]["name"]

    # Each pod the release would start (there is no kubelet yet), its test pods too, as a Pod
    # that Pod Security admits: a server-side dry run goes through the same admission.
    pods = pod_templates(objects + manifest_objects("jobs", namespace, "hooks"))
    assert any(where.startswith("Deployment/") for where, _ in pods) and any(
        where.startswith("Pod/") for where, _ in pods
    ), pods
    core, refused = client.CoreV1Api(api), {}
    for where, pod in pods:
        body = {"metadata": {"generateName": "admission-", "labels": pod["metadata"].get("labels", {})}}
        try:
            core.create_namespaced_pod(namespace, {**body, "spec": pod["spec"]}, dry_run="All")
        except ApiException as error:
            refused[where] = json.loads(error.body).get("message", error.body)
    assert not refused, refused


def test_an_upgrade_with_a_changed_setting_keeps_the_generated_passwords(lib: str, api, restricted_namespace):
    """The charts generate passwords once and keep them (`lookup`, which only a real API server
    answers; `helm template` sees nothing and would make new ones)."""
    namespace = restricted_namespace(f"{lib}-upgrade")
    helm_cli("install", *readme_install_args(lib, namespace))
    apps = client.AppsV1Api(api)

    def grace_period() -> int:
        worker = apps.read_namespaced_deployment(f"jobs-{lib}-worker", namespace)
        return worker.spec.template.spec.termination_grace_period_seconds

    before, grace_before = opaque_secrets(api, namespace), grace_period()
    assert before and all(before.values()), before
    helm_cli("upgrade", *readme_install_args(lib, namespace, "--set", "jobs.timeLimitSeconds=120"))
    assert grace_period() != grace_before, "the upgrade changed nothing"
    assert opaque_secrets(api, namespace) == before
