"""What the charts promise, read from rendered manifests, one behaviour per test, for each chart."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.helm.render import (
    HELM_DIR,
    NAMESPACE,
    RELEASE,
    RenderError,
    config_env,
    containers,
    find,
    notes,
    one,
    pod_specs,
    render,
)
from tests.promtool import promtool
from tests.static.helpers import recipe_settings

RECIPE_COMPONENTS = ["app", "worker", "scheduler", "monitor"]
# Each demo's schema migration (migrate.command): Django's for the Django demo.
MIGRATIONS = {
    "celery": ["python", "manage.py", "migrate", "--noinput"],
    "rq": ["python", "-m", "demo_rq.migrate"],
    "dramatiq": ["python", "manage.py", "migrate", "--noinput"],
    "arq": ["python", "-m", "demo_arq.migrate"],
}
ALL_FEATURES = ("all-features",)


QUEUE_LISTS = {"celery": "default", "rq": "rq:queue:default", "dramatiq": "dramatiq:default"}
FROM_REDIS = {"worker": {"keda": {"source": "redis"}}}
FROM_EXPORTER = {"worker": {"keda": {"source": "exporter"}}}


def secret_targets(objects: list[dict]) -> dict[str, tuple[str, str]]:
    """What KEDA's TriggerAuthentication reads: parameter -> (Secret, key)."""
    refs = one(objects, "TriggerAuthentication")["spec"]["secretTargetRef"]
    return {ref["parameter"]: (ref["name"], ref["key"]) for ref in refs}


# Grace period


@pytest.mark.parametrize("limit", [6, 300, 3600])
def test_the_worker_grace_period_outlasts_the_time_limit_and_the_recipe_accepts_it(lib: str, limit: int):
    objects = render(lib, {"jobs": {"timeLimitSeconds": limit}})
    grace = one(objects, "Deployment", "worker")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    env = config_env(objects)
    assert grace > limit and env["STOP_GRACE_PERIOD_S"] == str(grace)
    recipe_settings(lib, **env).check()  # the worker's own start-up check


@pytest.mark.parametrize("limit", [6, 300])
def test_the_charts_shortest_grace_period_is_the_recipes_shortest(lib: str, limit: int):
    """The render-time guard and the worker's start-up check agree, so a chart never installs
    a worker that refuses to start, nor one whose graceful stop is cut short."""
    minimum = recipe_settings(lib, JOB_TIME_LIMIT_S=str(limit)).min_stop_grace_period_s
    accepted = render(
        lib, {"jobs": {"timeLimitSeconds": limit}, "worker": {"terminationGracePeriodSeconds": minimum}}
    )
    assert (
        one(accepted, "Deployment", "worker")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        == minimum
    )
    with pytest.raises(
        RenderError,
        match=rf"terminationGracePeriodSeconds={minimum - 1} is too short .* at least {minimum} s",
    ):
        render(
            lib,
            {"jobs": {"timeLimitSeconds": limit}, "worker": {"terminationGracePeriodSeconds": minimum - 1}},
        )


def test_every_recipe_container_gets_the_same_settings(lib: str):
    objects = render(lib)
    config = one(objects, "ConfigMap", "config")["metadata"]["name"]
    for component in RECIPE_COMPONENTS:
        spec = one(objects, "Deployment", component)["spec"]["template"]["spec"]
        for container in containers(spec):
            assert {"configMapRef": {"name": config}} in container["envFrom"], (component, container["name"])


# Scheduler


@pytest.mark.parametrize("files", [(), ALL_FEATURES])
def test_the_scheduler_is_one_pod_replaced_by_recreate_and_never_autoscaled(lib: str, files: tuple):
    objects = render(lib, files=files)
    scheduler = one(objects, "Deployment", "scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
    targets = [
        o["spec"]["scaleTargetRef"]["name"]
        for o in objects
        if o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")
    ]
    assert scheduler["metadata"]["name"] not in targets


def test_the_scheduler_runs_apart_from_the_workers(lib: str):
    objects = render(lib)
    worker = one(objects, "Deployment", "worker")["spec"]["template"]["spec"]["containers"][0]["command"]
    scheduler = one(objects, "Deployment", "scheduler")["spec"]["template"]["spec"]["containers"][0][
        "command"
    ]
    assert worker != scheduler
    assert not {"--beat", "-B", "--with-scheduler-only"} & set(worker)


# Hardened pods


@pytest.mark.parametrize("files", [(), ALL_FEATURES])
def test_every_pod_runs_as_non_root_with_the_runtime_default_seccomp_profile(lib: str, files: tuple):
    for name, spec in pod_specs(render(lib, files=files)):
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 0, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name


@pytest.mark.parametrize("files", [(), ALL_FEATURES])
def test_every_container_has_a_read_only_root_no_privilege_escalation_and_no_capabilities(
    lib: str, files: tuple
):
    for name, spec in pod_specs(render(lib, files=files)):
        for container in containers(spec):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["capabilities"] == {"drop": ["ALL"]}, (name, container["name"])
            assert "privileged" not in context


def test_recipe_containers_write_only_to_an_emptydir_tmp(lib: str):
    for component in RECIPE_COMPONENTS:
        spec = one(render(lib), "Deployment", component)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in containers(spec):
            for mount in container["volumeMounts"]:
                assert "emptyDir" in volumes[mount["name"]], (component, mount)
            assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}
        assert not any("hostPath" in v for v in spec["volumes"])


@pytest.mark.parametrize("files", [(), ALL_FEATURES])
def test_no_secret_value_is_written_into_a_pod_spec(lib: str, files: tuple):
    for name, spec in pod_specs(render(lib, files=files)):
        for container in containers(spec):
            for variable in container.get("env", []):
                if any(word in variable["name"] for word in ("PASSWORD", "URL", "AUTH")):
                    assert "valueFrom" in variable or "$(" in variable.get("value", ""), (name, variable)


# Commands


def test_every_process_is_started_in_exec_form(lib: str):
    objects = render(lib)
    for component in RECIPE_COMPONENTS:
        command = one(objects, "Deployment", component)["spec"]["template"]["spec"]["containers"][0][
            "command"
        ]
        assert isinstance(command, list) and command[0] not in ("sh", "bash", "/bin/sh"), component
    redis = one(objects, "StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]
    assert redis["command"] == ["redis-server"]


@pytest.mark.parametrize("files", [(), ALL_FEATURES])
def test_every_variable_a_command_or_env_refers_to_is_defined_before_it(lib: str, files: tuple):
    """Kubernetes expands $(NAME) only from variables defined earlier; an unknown one stays as
    the literal text "$(NAME)" (Celery's --concurrency, Flower's credentials, Redis's password)."""
    objects = render(lib, files=files)
    config_keys = set(config_env(objects))
    for name, spec in pod_specs(objects):
        for container in containers(spec):
            defined = set(config_keys) if container.get("envFrom") else set()
            for variable in container.get("env", []):
                for ref in re.findall(r"\$\((\w+)\)", variable.get("value", "")):
                    assert ref in defined, (name, container["name"], variable["name"], ref)
                defined.add(variable["name"])
            for part in container.get("command", []) + container.get("args", []):
                for ref in re.findall(r"\$\((\w+)\)", part):
                    assert ref in defined, (name, container["name"], part)


@pytest.mark.stacks("celery")
def test_celerys_pool_size_is_the_workers_concurrency_setting(lib: str):
    worker = one(render(lib, {"worker": {"env": {"WORKER_CONCURRENCY": "7"}}}), "Deployment", "worker")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert "--concurrency=$(WORKER_CONCURRENCY)" in container["command"]
    assert {"name": "WORKER_CONCURRENCY", "value": "7"} in container["env"]


def test_a_shell_command_is_refused_with_the_reason(lib: str):
    with pytest.raises(RenderError, match=r'worker\.command starts with "sh": .* exec form'):
        render(lib, {"worker": {"command": ["sh", "-c", "exec python -m worker"]}})


# Probes


def test_the_worker_liveness_probe_reads_a_heartbeat_file_and_never_the_broker(lib: str):
    worker = one(render(lib), "Deployment", "worker")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert set(worker[probe]) - {"periodSeconds", "timeoutSeconds", "failureThreshold"} == {"exec"}, probe
        script = " ".join(worker[probe]["exec"]["command"])
        assert "/tmp/worker-heartbeat" in script and "-newermt" in script, probe
        assert not any(word in script for word in ("redis", "inspect", "ping", "python")), probe


def test_the_liveness_probe_tolerates_a_stalled_heartbeat_longer_than_it_is_refreshed(lib: str):
    """The heartbeat is touched every 5 s; a restart needs it 30 s stale for 4 probes in a row."""
    liveness = one(render(lib), "Deployment", "worker")["spec"]["template"]["spec"]["containers"][0][
        "livenessProbe"
    ]
    assert "'30 seconds ago'" in liveness["exec"]["command"][-1]
    assert liveness["failureThreshold"] * liveness["periodSeconds"] >= 60


def test_every_long_running_container_has_liveness_and_serving_ones_readiness(lib: str):
    objects = render(lib)
    for kind in ("Deployment", "StatefulSet"):
        for workload in find(objects, kind):
            for container in workload["spec"]["template"]["spec"]["containers"]:
                name = (workload["metadata"]["name"], container["name"])
                assert "livenessProbe" in container, name
                if container.get("ports"):
                    assert "readinessProbe" in container, name


def test_the_scheduler_liveness_probe_reads_its_heartbeat_file(lib: str):
    scheduler = one(render(lib), "Deployment", "scheduler")["spec"]["template"]["spec"]["containers"][0]
    assert "/tmp/beat-heartbeat" in scheduler["livenessProbe"]["exec"]["command"][-1]


# Resources, disruption budgets, rollouts


def test_every_container_has_resource_requests_and_a_memory_limit(lib: str):
    for name, spec in pod_specs(render(lib)):
        for container in containers(spec):
            assert container["resources"]["requests"], (name, container["name"])
            assert "memory" in container["resources"]["limits"], (name, container["name"])


def test_workers_and_app_have_a_disruption_budget_selecting_their_pods(lib: str):
    objects = render(lib)
    for component in ("worker", "app"):
        budget = one(objects, "PodDisruptionBudget", component)
        pods = one(objects, "Deployment", component)["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= pods.items()
        assert budget["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("sleep", [0, 5, 20])
def test_the_app_serves_on_while_its_endpoint_is_withdrawn_and_within_its_grace_period(lib: str, sleep: int):
    pod = one(render(lib, {"app": {"preStopSleepSeconds": sleep}}), "Deployment", "app")["spec"]["template"]
    (app,) = pod["spec"]["containers"]
    if sleep:
        assert app["lifecycle"] == {"preStop": {"sleep": {"seconds": sleep}}}
    else:
        assert "lifecycle" not in app
    assert pod["spec"]["terminationGracePeriodSeconds"] == sleep + 30


def test_a_worker_rollout_starts_the_new_pod_before_stopping_an_old_one(lib: str):
    strategy = one(render(lib), "Deployment", "worker")["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_a_settings_change_rolls_the_pods(lib: str):
    def annotations(tick: int) -> dict[str, str]:
        objects = render(lib, {"jobs": {"tickIntervalSeconds": tick}})
        return {
            c: one(objects, "Deployment", c)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for c in RECIPE_COMPONENTS
        }

    before, after, again = annotations(60), annotations(30), annotations(60)
    assert all(before[c] != after[c] for c in RECIPE_COMPONENTS)
    assert before == again


def test_tables_are_migrated_before_app_worker_and_scheduler_start(lib: str):
    objects = render(lib)
    for component in ("app", "worker", "scheduler"):
        init = one(objects, "Deployment", component)["spec"]["template"]["spec"]["initContainers"]
        assert [c["command"] for c in init] == [MIGRATIONS[lib]]


# Network


@pytest.mark.parametrize("files", [(), ALL_FEATURES])
def test_every_service_is_cluster_internal(lib: str, files: tuple):
    for service in find(render(lib, files=files), "Service"):
        assert service["spec"]["type"] == "ClusterIP", service["metadata"]["name"]
        assert all("nodePort" not in port for port in service["spec"]["ports"])
    assert not find(render(lib, files=files), "Ingress")


@pytest.mark.parametrize("store,port", [("redis", 6379), ("postgres", 5432)])
def test_only_the_releases_own_pods_reach_redis_and_postgres(lib: str, store: str, port: int):
    objects = render(lib)
    policy = one(objects, "NetworkPolicy", store)
    pods = one(objects, "StatefulSet", store)["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pods.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
    [source] = rule["from"]
    assert source == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": lib, "app.kubernetes.io/instance": RELEASE}}
    }
    # every recipe pod carries those labels, so the policy lets them in
    for component in RECIPE_COMPONENTS:
        labels = one(objects, "Deployment", component)["spec"]["template"]["metadata"]["labels"]
        assert source["podSelector"]["matchLabels"].items() <= labels.items()


def test_keda_s_operator_is_let_in_to_redis_only_when_it_reads_the_queue_there(lib: str):
    def keda_rules(objects: list[dict]) -> list[dict]:
        rules = one(objects, "NetworkPolicy", "redis")["spec"]["ingress"]
        return [r for r in rules if "namespaceSelector" in r["from"][0]]

    assert keda_rules(render(lib, FROM_EXPORTER, files=ALL_FEATURES)) == []
    if lib != "arq":
        [rule] = keda_rules(render(lib, FROM_REDIS, files=ALL_FEATURES))
        keda_namespace = {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}
        assert rule["from"][0]["namespaceSelector"] == keda_namespace


def test_network_policies_can_be_switched_off(lib: str):
    assert not find(render(lib, {"networkPolicy": {"enabled": False}}), "NetworkPolicy")


# Images


@pytest.mark.parametrize("files", [(), ALL_FEATURES])
def test_every_image_is_pinned_by_tag(lib: str, files: tuple):
    for name, spec in pod_specs(render(lib, files=files)):
        for container in containers(spec):
            repository, _, tag = container["image"].rpartition(":")
            assert repository and "/" not in tag and tag not in ("", "latest"), (name, container["image"])


def test_the_recipe_image_defaults_to_the_charts_app_version(lib: str):
    app_version = yaml.safe_load((HELM_DIR / lib / "Chart.yaml").read_text())["appVersion"]
    image = one(render(lib), "Deployment", "worker")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"taskq/{lib}:{app_version}"


@pytest.mark.parametrize("key", ["image", "redis.image", "postgres.image"])
def test_latest_is_refused_with_the_reason(lib: str, key: str):
    values: dict = {}
    node = values
    for part in key.split("."):
        node = node.setdefault(part, {})
    node["tag"] = "latest"
    with pytest.raises(RenderError, match=rf'{key}.tag="latest": pin a version'):
        render(lib, values)


# Autoscaling


def test_keda_and_hpa_together_are_refused_with_the_reason(lib: str):
    with pytest.raises(RenderError, match=r"keda.enabled and worker.hpa.enabled are both true"):
        render(lib, {"worker": {"keda": {"enabled": True}, "hpa": {"enabled": True}}})


def test_with_keda_on_a_scaled_object_owns_the_worker_replicas(lib: str):
    objects = render(lib, files=ALL_FEATURES)
    scaled = one(objects, "ScaledObject")
    worker = one(objects, "Deployment", "worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert "replicas" not in worker["spec"]
    assert not find(objects, "HorizontalPodAutoscaler")
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (0, 20)


def test_keda_scales_down_only_after_a_stabilisation_window_one_pod_at_a_time(lib: str):
    behavior = one(render(lib, files=ALL_FEATURES), "ScaledObject")["spec"]["advanced"]
    scale_down = behavior["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] == 300
    assert scale_down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]


# Where each library keeps the waiting jobs, as its Redis broker code names the list.


def test_keda_sizes_the_workers_by_the_exporters_backlog_of_their_queues(lib: str):
    """Waiting plus running, the same for every library: busy workers are not scaled away."""
    values = {"worker": {"keda": {"source": "exporter", "queues": ["default", "emails"]}}}
    objects = render(lib, values, files=ALL_FEATURES)
    [trigger] = one(objects, "ScaledObject")["spec"]["triggers"]
    exporter = one(objects, "Service", "exporter")
    assert trigger["type"] == "metrics-api" and trigger["metadata"]["valueLocation"] == "backlog"
    assert trigger["metadata"]["url"] == (
        f"http://{exporter['metadata']['name']}.{NAMESPACE}.svc:9808/backlog?queues=default,emails"
    )
    assert trigger["metadata"]["targetValue"] == "5" and "authenticationRef" not in trigger
    assert not find(objects, "TriggerAuthentication")
    with pytest.raises(RenderError, match=r"source exporter needs exporter\.enabled"):
        render(lib, {"exporter": {"enabled": False}, **FROM_EXPORTER}, files=ALL_FEATURES)


@pytest.mark.stacks("celery", "rq", "dramatiq")
def test_keda_reads_the_librarys_queue_list_with_the_brokers_password(lib: str):
    objects = render(lib, FROM_REDIS, files=ALL_FEATURES)
    [trigger] = one(objects, "ScaledObject")["spec"]["triggers"]
    assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == QUEUE_LISTS[lib]
    assert trigger["metadata"]["listLength"] == "5"
    assert trigger["metadata"]["address"] == f"jobs-redis.{NAMESPACE}.svc:6379"
    auth = one(objects, "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    redis_env = one(objects, "StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]["env"]
    password_ref = next(e for e in redis_env if e["name"] == "REDIS_PASSWORD")["valueFrom"]["secretKeyRef"]
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "password", **password_ref}]


@pytest.mark.stacks("celery", "rq", "dramatiq")
def test_keda_has_a_trigger_for_each_queue_the_workers_consume(lib: str):
    values = {"worker": {"keda": {"source": "redis", "queues": ["default", "emails"]}}}
    triggers = one(render(lib, values, files=ALL_FEATURES), "ScaledObject")["spec"]["triggers"]
    emails = QUEUE_LISTS[lib].replace("default", "emails")
    assert [t["metadata"]["listName"] for t in triggers] == [QUEUE_LISTS[lib], emails]
    assert all(t["authenticationRef"] == triggers[0]["authenticationRef"] for t in triggers)


@pytest.mark.stacks("celery", "rq", "dramatiq")
def test_keda_reads_an_external_redis_from_its_secret(lib: str):
    objects = render(
        lib,
        {"worker": {"keda": {"enabled": True, "source": "redis"}, "hpa": {"enabled": False}}},
        files=("external-datastores",),
    )
    [trigger] = one(objects, "ScaledObject")["spec"]["triggers"]
    assert "address" not in trigger["metadata"] and trigger["metadata"]["enableTLS"] == "true"
    assert secret_targets(objects) == {
        "address": ("jobs-redis", "redis-address"),
        "password": ("jobs-redis", "redis-password"),
    }


@pytest.mark.stacks("arq")
def test_keda_s_redis_fallback_is_refused_for_arq_with_the_reason(lib: str):
    """Arq's queue is a sorted set where running jobs and retries in their backoff stay."""
    with pytest.raises(RenderError, match=r"Arq's queue is not a Redis list"):
        render(lib, FROM_REDIS, files=ALL_FEATURES)


def test_hpa_scales_workers_on_cpu_instead(lib: str):
    objects = render(lib, files=("external-datastores",))
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == one(objects, "Deployment", "worker")["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert (
        not find(objects, "ScaledObject") and "replicas" not in one(objects, "Deployment", "worker")["spec"]
    )


def test_hpa_without_a_cpu_request_is_refused_with_the_reason(lib: str):
    with pytest.raises(RenderError, match=r"needs worker.resources.requests.cpu"):
        render(lib, {"worker": {"hpa": {"enabled": True}, "resources": {"requests": {"cpu": None}}}})


# Datastores


def test_the_charts_redis_keeps_an_append_only_file_on_a_volume_and_never_evicts(lib: str):
    redis = one(render(lib), "StatefulSet", "redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_external_datastores_are_read_from_an_existing_secret(lib: str):
    objects = render(lib, files=("external-datastores",))
    assert not find(objects, "StatefulSet") and not [
        s for s in find(objects, "Secret") if "redis" in s["metadata"]["name"]
    ]
    env = {
        e["name"]: e
        for e in one(objects, "Deployment", "worker")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "jobs-redis", "key": "redis-url"}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "jobs-postgres",
        "key": "database-url",
    }
    assert "REDIS_PASSWORD" not in env and "REDIS_HOST" not in config_env(objects)


@pytest.mark.parametrize("store", ["redis", "postgres"])
def test_an_external_datastore_without_its_secret_is_refused_with_the_fix(lib: str, store: str):
    other = "postgres" if store == "redis" else "redis"
    with pytest.raises(
        RenderError, match=rf"{store}.enabled=false needs external{store.title()}.existingSecret"
    ):
        render(lib, {store: {"enabled": False}, other: {"enabled": True}})


# Monitoring and tests


def test_the_monitor_gets_its_credentials_from_a_secret(lib: str):
    objects = render(lib)
    monitor = one(objects, "Deployment", "monitor")["spec"]["template"]["spec"]["containers"][0]
    secret = one(objects, "Secret", "monitor")
    env = {e["name"]: e for e in monitor["env"]}
    for variable, key in (("MONITOR_USER", "username"), ("MONITOR_PASSWORD", "password")):
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": key}
    assert set(secret["data"]) == {"username", "password"}
    # A Secret of your own replaces the generated one.
    own = render(lib, files=ALL_FEATURES)
    assert not find(own, "Secret", "monitor")


def test_every_service_monitor_scrapes_a_port_a_service_exposes(lib: str):
    objects = render(lib, files=ALL_FEATURES)
    monitors = find(objects, "ServiceMonitor")
    # the exporter's for every library; the library's own endpoint for Celery and Dramatiq
    assert {m["metadata"]["labels"]["app.kubernetes.io/component"] for m in monitors} == {
        "celery": {"exporter", "monitor"},
        "dramatiq": {"exporter", "worker"},
    }.get(lib, {"exporter"})
    for monitor in monitors:
        [endpoint] = monitor["spec"]["endpoints"]
        selected = [
            s
            for s in find(objects, "Service")
            if monitor["spec"]["selector"]["matchLabels"].items() <= s["spec"]["selector"].items()
        ]
        assert any(endpoint["port"] in {p["name"] for p in s["spec"]["ports"]} for s in selected)
        assert monitor["metadata"]["labels"]["release"] == "prometheus"
        if monitor["metadata"]["labels"]["app.kubernetes.io/component"] == "monitor":
            # Flower's /metrics asks for the monitor's credentials (taskq.celery.flower).
            env = {
                e["name"]: e
                for e in one(objects, "Deployment", "monitor")["spec"]["template"]["spec"]["containers"][0][
                    "env"
                ]
            }
            assert endpoint["basicAuth"] == {
                "username": env["MONITOR_USER"]["valueFrom"]["secretKeyRef"],
                "password": env["MONITOR_PASSWORD"]["valueFrom"]["secretKeyRef"],
            }
        else:
            assert "basicAuth" not in endpoint


def test_the_exporter_runs_by_default_behind_a_service_and_is_probed(lib: str):
    objects = render(lib)
    deployment = one(objects, "Deployment", "exporter")
    [container] = containers(deployment["spec"]["template"]["spec"])
    assert container["command"] == ["taskq", "exporter", "--port=9808"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    service = one(objects, "Service", "exporter")
    assert service["spec"]["ports"][0]["port"] == 9808 and service["spec"]["type"] == "ClusterIP"
    off = render(lib, {"exporter": {"enabled": False}})
    assert not find(off, "Deployment", "exporter") and not find(off, "Service", "exporter")


def test_the_prometheus_rule_is_the_promtool_tested_rules_file(lib: str):
    rule = one(render(lib, files=ALL_FEATURES), "PrometheusRule")
    source = yaml.safe_load((HELM_DIR.parent / "recipes" / "monitoring" / "alerts.yaml").read_text())
    for group in source["groups"]:
        for alert in group["rules"]:
            anchor = alert["annotations"]["runbook_url"].split("#")[1]
            alert["annotations"]["runbook_url"] = f"https://runbooks.example.com/taskq#{anchor}"
    assert rule["spec"] == source
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert not find(render(lib), "PrometheusRule")  # off by default: it needs the operator's CRDs


# Three thresholds moved from the defaults (300 s, 100 jobs, 5 %), and what promtool must then see
# on one queue whose oldest job waits 2 minutes, that holds 500 jobs and grows, and whose attempts
# fail one in ten: the warning fires early, and the other two stay quiet.
MOVED_THRESHOLDS = {"queueLatencyWarningSeconds": 60, "backlogJobs": 1000, "failureRatio": 0.2}
ONE_BUSY_QUEUE = [
    ("taskq_queue_oldest_job_age_seconds", {}, "120x30"),
    ("taskq_queue_depth", {}, "500+10x30"),
    ("taskq_jobs_total", {"outcome": "succeeded"}, "0+90x30"),
    ("taskq_jobs_total", {"outcome": "retried"}, "0+10x30"),
]


def alerts_that_fire(rules: dict, tmp_path, at: str = "25m") -> set[str]:
    """The alerts promtool finds firing at `at` on ONE_BUSY_QUEUE: each alert is tested to fire,
    and the names of those whose test passes are returned."""
    labels = {"job": "taskq-exporter", "queue_name": "default"}
    series = [
        {
            "series": name + "{" + ",".join(f'{k}="{v}"' for k, v in {**labels, **extra}.items()) + "}",
            "values": v,
        }
        for name, extra, v in ONE_BUSY_QUEUE
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    fired = set()
    for alert in ("TaskqQueueLatencyHigh", "TaskqQueueBacklogGrowing", "TaskqHighFailureRate"):
        check = {"eval_time": at, "alertname": alert, "exp_alerts": []}
        test = {"rule_files": ["rules.yaml"], "tests": [{"interval": "1m", "input_series": series,
                                                          "alert_rule_test": [check]}]}  # fmt: skip
        (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
        result = promtool("test", "rules", str(tmp_path / "test.yaml"))
        if result.returncode != 0:  # it fired where it was told not to
            assert f"alertname: {alert}" in result.stderr + result.stdout, result.stderr + result.stdout
            fired.add(alert)
    return fired


def test_the_alert_thresholds_are_values(lib: str, tmp_path):
    def rules(thresholds: dict) -> dict:
        values = {"metrics": {"prometheusRule": {"enabled": True, "thresholds": thresholds}}}
        return one(render(lib, values), "PrometheusRule")["spec"]

    defaults = rules({})
    assert alerts_that_fire(defaults, tmp_path) == {"TaskqQueueBacklogGrowing", "TaskqHighFailureRate"}
    assert alerts_that_fire(rules(MOVED_THRESHOLDS), tmp_path) == {"TaskqQueueLatencyHigh"}
    assert "${" not in json.dumps(defaults)  # every threshold filled in
    with pytest.raises(RenderError, match="failureRatio"):
        rules({"failureRatio": 5})


def test_the_grafana_dashboard_is_the_dashboard_file_for_the_sidecar(lib: str):
    config_map = one(render(lib, files=ALL_FEATURES), "ConfigMap", "exporter")
    source = (HELM_DIR.parent / "recipes" / "monitoring" / "grafana-dashboard.json").read_text()
    assert json.loads(config_map["data"]["taskq-queues.json"]) == json.loads(source)
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert not find(render(lib), "ConfigMap", "exporter")


def test_alerts_and_scraping_without_the_exporter_are_refused_with_the_reason(lib: str):
    for metrics in (
        {"prometheusRule": {"enabled": True}},
        {"serviceMonitor": {"enabled": True}},
        {"grafanaDashboard": {"enabled": True}},
    ):
        with pytest.raises(RenderError, match=r"needs exporter\.enabled"):
            render(lib, {"exporter": {"enabled": False}, "metrics": metrics})


def test_helm_test_posts_a_demo_job_to_the_app_and_waits_for_its_effect(lib: str):
    objects = render(lib)
    [pod] = [o for o in find(objects, "Pod") if o["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    script = pod["spec"]["containers"][0]["command"][-1]
    app = one(objects, "Service", "app")
    assert f"http://{app['metadata']['name']}:{app['spec']['ports'][0]['port']}" in script
    assert "{base}/jobs" in script and "{base}/effects/{key}" in script and 'effect["effects"] == 1' in script
    assert pod["spec"]["restartPolicy"] == "Never"


def test_every_object_carries_the_recommended_labels(lib: str):
    for obj in render(lib, files=ALL_FEATURES):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == lib and labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm" and labels["app.kubernetes.io/component"]


def test_the_install_notes_say_how_to_reach_the_app_and_the_monitor(lib: str):
    objects = render(lib)
    text = notes(lib)
    app, monitor = one(objects, "Service", "app"), one(objects, "Service", "monitor")
    assert f"port-forward service/{app['metadata']['name']} 8000:8000" in text
    port = monitor["spec"]["ports"][0]["port"]
    assert f"port-forward service/{monitor['metadata']['name']} {port}:{port}" in text
    assert f"get secret {one(objects, 'Secret', 'monitor')['metadata']['name']}" in text
    assert f"helm test {RELEASE}" in text


def test_the_demos_payment_provider_runs_hardened_and_the_recipe_pods_know_its_url(lib: str):
    """The demo's `charge` job pays through the stand-in provider; an app of its own turns it off."""
    objects = render(lib)
    service = one(objects, "Service", "psp")
    assert service["spec"]["type"] == "ClusterIP" and service["spec"]["ports"][0]["port"] == 8080
    spec = one(objects, "Deployment", "psp")["spec"]["template"]["spec"]
    (container,) = containers(spec)
    assert container["command"] == ["python", "-m", "demo_common.psp_server"]
    assert container["securityContext"]["readOnlyRootFilesystem"] and spec["securityContext"]["runAsNonRoot"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert config_env(objects)["PSP_URL"] == f"http://{service['metadata']['name']}:8080"
    without = render(lib, {"psp": {"enabled": False}})
    assert not find(without, "Deployment", "psp") and "PSP_URL" not in config_env(without)
