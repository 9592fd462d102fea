"""deploy/taskq/compose.yaml, as `make adopt` writes it, included in a user's own compose project:
the worker, scheduler and monitor run the user's image with the user's settings, publish nothing
but the monitor on loopback, are hardened like our stacks, and bring a Redis and a Postgres only
when asked. `docker compose config`: the Docker CLI and Compose, no engine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.static.helpers import SETTINGS
from tests.static.test_compose_policy import seconds
from tests.static.user_repo import adopt

# The user's own project: a web service that builds the image, its own Redis, its settings.
USER_COMPOSE = """\
include:
  - deploy/taskq/compose.yaml
services:
  web:
    build: .
    image: shop:dev
    env_file: .env
    ports: ["8000:8000"]
  redis:
    image: redis:7
"""
USER_ENV = "SHOP_SETTING=theirs\nREDIS_URL=redis://redis:6379/0\nDATABASE_URL=postgresql://shop@db/shop\n"
TASKQ_SERVICES = {"taskq-worker", "taskq-scheduler", "taskq-monitor", "taskq-exporter"}


def fill_in(example: str, **values: str) -> str:
    """The adoption's .env.example with its placeholders set, as the guide says to."""
    lines = []
    for line in example.splitlines():
        name = line.split("=", 1)[0]
        if name in values:
            line = f"{name}={values.pop(name)}"
        lines.append(line.split("  #", 1)[0].rstrip())
    return "\n".join(lines + [f"{k}={v}" for k, v in values.items()]) + "\n"


def project(repo: Path, lib: str, **values: str) -> Path:
    assert adopt(repo, lib).returncode == 0
    (repo / "compose.yaml").write_text(USER_COMPOSE)
    (repo / ".env").write_text(USER_ENV)
    folder = repo / "deploy" / "taskq"
    example = (folder / ".env.example").read_text()
    values = {"TASKQ_IMAGE": "shop:dev", "TASKQ_MONITOR_PASSWORD": "m", **values}
    (folder / ".env").write_text(fill_in(example, **values))
    return repo


def config(repo: Path, **env: str) -> subprocess.CompletedProcess:
    clean_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home()), **env}
    return subprocess.run(
        ["docker", "compose", "config", "--format", "json"],
        cwd=repo,
        env=clean_env,
        capture_output=True,
        text=True,
        check=False,
    )


def model(repo: Path, **env: str) -> dict:
    result = config(repo, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_it_adds_the_worker_scheduler_and_monitor_on_the_users_image_and_leaves_theirs(repo: Path, lib: str):
    services = model(project(repo, lib))["services"]
    assert set(services) == {"web", "redis"} | TASKQ_SERVICES
    assert all(services[name]["image"] == "shop:dev" for name in TASKQ_SERVICES)
    assert "build" not in services["taskq-worker"]  # the user's own service builds it
    assert services["web"]["ports"][0]["published"] == "8000"


def test_only_the_monitor_is_published_and_only_on_loopback(repo: Path, lib: str):
    services = model(project(repo, lib, TASKQ_MONITOR_PORT="5999"))["services"]
    published = {name: services[name]["ports"] for name in TASKQ_SERVICES if services[name].get("ports")}
    assert list(published) == ["taskq-monitor"]
    (port,) = published["taskq-monitor"]
    assert (port["host_ip"], port["published"]) == ("127.0.0.1", "5999")


def test_its_services_are_hardened(repo: Path, lib: str):
    services = model(project(repo, lib), COMPOSE_PROFILES="taskq-redis,taskq-postgres")["services"]
    for name, service in services.items():
        if name.startswith("taskq-"):
            assert service.get("read_only") is True, name
            assert "no-new-privileges:true" in service.get("security_opt", []), name
            assert service.get("cap_drop") == ["ALL"], name
            assert service.get("user", "0").split(":")[0] not in ("", "0", "root"), name


def test_the_users_settings_reach_the_services(repo: Path, lib: str):
    """REDIS_URL and DATABASE_URL from the user's .env, and the app's own settings with them."""
    worker = model(project(repo, lib))["services"]["taskq-worker"]
    environment = worker["environment"]
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert environment["DATABASE_URL"] == "postgresql://shop@db/shop"
    assert environment["SHOP_SETTING"] == "theirs"


def test_the_worker_grace_period_is_the_one_it_checks_against(repo: Path, lib: str):
    services = model(project(repo, lib))["services"]
    worker_env = services["taskq-worker"]["environment"]
    loaded = SETTINGS[lib].from_env(worker_env).check()
    assert seconds(services["taskq-worker"]["stop_grace_period"]) == loaded.effective_stop_grace_period_s
    short = model(project(repo, lib, STOP_GRACE_PERIOD_S="77"))["services"]["taskq-worker"]
    assert seconds(short["stop_grace_period"]) == 77 and short["environment"]["STOP_GRACE_PERIOD_S"] == "77"


@pytest.mark.parametrize("missing", ["TASKQ_IMAGE", "TASKQ_APP", "TASKQ_MONITOR_PASSWORD"])
def test_a_missing_setting_is_named(repo: Path, lib: str, missing: str):
    path = project(repo, lib) / "deploy" / "taskq" / ".env"
    kept = [line for line in path.read_text().splitlines() if not line.startswith(missing)]
    path.write_text("\n".join(kept) + "\n")
    result = config(repo)
    assert result.returncode != 0
    assert missing in result.stderr


def test_the_toolkits_redis_and_postgres_only_when_asked(repo: Path, lib: str):
    project(repo, lib)
    assert not {"taskq-redis", "taskq-postgres"} & set(model(repo)["services"])
    both = model(repo, COMPOSE_PROFILES="taskq-redis,taskq-postgres")["services"]
    assert {"taskq-redis", "taskq-postgres"} <= set(both)
    assert not both["taskq-redis"].get("ports") and not both["taskq-postgres"].get("ports")
