"""The charts hosting an app of the user's own (ci/own-app-values.yaml): no demo app, an image
per component, env from the user's Secrets and ConfigMaps, extra volumes, the migration optional
or the user's own, and a `helm test` of what is deployed."""

from __future__ import annotations

import pytest
import yaml

from tests.helm.render import RenderError, containers, find, notes, one, pod_specs, render, values_file

OWN = ("own-app",)
WEB_IMAGE, WORKER_IMAGE = "registry.example.com/shop/web:1.4.2", "registry.example.com/shop/worker:1.4.2"
KEY_VOLUME = {"name": "service-account-key", "secret": {"secretName": "shop-service-account-key"}}
KEY_MOUNT = {"name": "service-account-key", "mountPath": "/var/run/secrets/shop", "readOnly": True}


def pod(objects: list[dict], kind: str, component: str) -> dict:
    o = one(objects, kind, component)
    return o["spec"] if kind == "Pod" else o["spec"]["template"]["spec"]


def main_container(spec: dict) -> dict:
    return spec["containers"][0]


def test_without_the_demo_app_nothing_of_it_is_rendered(lib: str):
    objects = render(lib, files=OWN)
    components = [o["metadata"]["labels"].get("app.kubernetes.io/component") for o in objects]
    assert "app" not in components
    assert find(render(lib), "Deployment", "app") and find(render(lib), "Service", "app")


def test_without_the_demo_app_helm_test_checks_the_workers_image_reaches_the_broker(lib: str):
    objects = render(lib, {"tests": {"command": []}}, files=OWN)
    test = pod(objects, "Pod", "test")
    worker = pod(objects, "Deployment", "worker")
    (container,) = test["containers"]
    assert container["image"] == main_container(worker)["image"]
    assert container["command"][:2] == ["python", "-c"] and "require_redis_url()" in container["command"][2]
    assert "/jobs" not in container["command"][2]
    # The worker's settings: the chart's ConfigMap and secrets, and the user's envFrom and env.
    assert container["envFrom"] == main_container(worker)["envFrom"]
    assert container["env"] == main_container(worker)["env"]


def test_helm_test_runs_the_users_command_in_the_workers_image_and_environment(lib: str):
    objects = render(lib, files=OWN)
    (container,) = pod(objects, "Pod", "test")["containers"]
    worker = main_container(pod(objects, "Deployment", "worker"))
    assert container["command"] == yaml.safe_load(values_file(lib, "own-app").read_text())["tests"]["command"]
    assert container["image"] == worker["image"] and container["env"] == worker["env"]
    assert container["volumeMounts"] == worker["volumeMounts"]


def test_with_the_demo_app_helm_test_posts_a_demo_job_through_it(lib: str):
    (container,) = pod(render(lib), "Pod", "test")["containers"]
    assert container["name"] == "post-job-and-wait-for-effect" and "/jobs" in container["command"][2]


def test_each_component_may_run_an_image_of_its_own(lib: str):
    objects = render(lib, files=OWN)
    assert main_container(pod(objects, "Deployment", "worker"))["image"] == WORKER_IMAGE
    for component in ("scheduler", "monitor"):
        assert main_container(pod(objects, "Deployment", component))["image"] == WEB_IMAGE
    with pytest.raises(RenderError, match=r"scheduler.image.tag=\"\": pin a version"):
        render(lib, {"scheduler": {"image": {"repository": "registry.example.com/shop/beat", "tag": ""}}})


def test_env_takes_strings_and_keys_of_the_users_secrets(lib: str):
    env = main_container(pod(render(lib, files=OWN), "Deployment", "worker"))["env"]
    by_name = {e["name"]: e for e in env}
    assert by_name["SHOP_ENV"] == {"name": "SHOP_ENV", "value": "production"}
    assert by_name["SHOP_SECRET_KEY"] == {
        "name": "SHOP_SECRET_KEY",
        "valueFrom": {"secretKeyRef": {"name": "shop-secrets", "key": "secret-key"}},
    }
    for bad in ({"value": "x"}, {"valueFrom": {}}):
        with pytest.raises(RenderError, match="schema"):
            render(lib, {"worker": {"env": {"SHOP_SECRET_KEY": bad}}})


def test_env_from_the_users_secrets_comes_after_the_charts_settings(lib: str):
    env_from = main_container(pod(render(lib, files=OWN), "Deployment", "scheduler"))["envFrom"]
    assert env_from[0]["configMapRef"]["name"].endswith("-config")
    settings = {"configMapRef": {"name": "shop-settings", "optional": True}}
    assert env_from[1:] == [{"secretRef": {"name": "shop-env"}}, settings]


def test_extra_volumes_are_mounted_in_the_component_and_its_migration(lib: str):
    spec = pod(render(lib, files=OWN), "Deployment", "worker")
    assert KEY_VOLUME in spec["volumes"]
    for container in containers(spec):
        assert KEY_MOUNT in container["volumeMounts"], container["name"]
    with pytest.raises(RenderError, match="schema"):
        render(lib, {"worker": {"extraVolumes": [{"name": "tmp", "emptyDir": {}}]}})


def test_the_migration_runs_the_users_command_or_not_at_all(lib: str):
    objects = render(lib, files=OWN)
    init = pod(objects, "Deployment", "worker")["initContainers"]
    assert [c["name"] for c in init] == ["migrate"] and init[0]["image"] == WEB_IMAGE
    off = render(lib, {"migrate": {"enabled": False}}, files=OWN)
    assert [name for name, spec in pod_specs(off) if spec.get("initContainers")] == []
    own = render(lib, {"migrate": {"image": {"repository": "example.com/shop/migrate", "tag": "7"}}})
    assert pod(own, "Deployment", "worker")["initContainers"][0]["image"] == "example.com/shop/migrate:7"


def test_the_notes_send_queue_operations_to_the_worker_without_the_demo_app(lib: str):
    assert f"exec deploy/demo-{lib}-app -- taskq depth" in notes(lib)
    own = notes(lib, OWN)
    assert f"exec deploy/demo-{lib}-worker -- taskq depth" in own and "POST /jobs" not in own
