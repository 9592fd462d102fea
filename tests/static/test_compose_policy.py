"""The contract's static promises, read from each stack's rendered Compose model.

These are fast guards; the integration suite shows the same promises by running them.
"""

from __future__ import annotations

import re

import pytest

from tests.static.helpers import DUMMY_SECRETS, SETTINGS, compose_config, compose_model

CONTRACT_SERVICES = {"app", "worker", "scheduler", "monitor", "redis", "postgres", "psp"}


def seconds(duration: str) -> float:
    """Compose's rendered durations, such as 5m30s or 36s."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)([hms])", duration))


def test_the_contract_services_exist(lib: str):
    assert set(compose_model(lib)["services"]) >= CONTRACT_SERVICES


# `make up` and `make up MONITORING=1` (the `monitoring` profile, which adds Prometheus).
PROFILES = {"": set(), "monitoring": {"prometheus"}}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_only_app_and_monitor_are_published_and_only_on_loopback(lib: str, profile: str):
    services = compose_model(lib, COMPOSE_PROFILES=profile)["services"]
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert set(published) == {"app", "monitor"} | PROFILES[profile]
    for ports in published.values():
        assert all(port["host_ip"] == "127.0.0.1" for port in ports), ports


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_service_is_hardened(lib: str, profile: str):
    services = compose_model(lib, COMPOSE_PROFILES=profile)["services"]
    assert PROFILES[profile] <= set(services)
    for name, service in services.items():
        assert service.get("read_only") is True, name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service.get("cap_drop") == ["ALL"], name
        assert service.get("user", "0").split(":")[0] not in ("", "0", "root"), name


@pytest.mark.parametrize("missing", sorted(DUMMY_SECRETS))
def test_a_missing_secret_stops_the_stack_with_a_message_naming_it(lib: str, missing: str):
    env = {k: v for k, v in DUMMY_SECRETS.items() if k != missing}
    result = compose_config(lib, env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_the_worker_grace_period_is_the_one_it_checks_against(lib: str):
    worker = compose_model(lib, STOP_GRACE_PERIOD_S="77")["services"]["worker"]
    assert seconds(worker["stop_grace_period"]) == 77
    assert worker["environment"]["STOP_GRACE_PERIOD_S"] == "77"


def test_the_default_timeouts_fit_together(lib: str):
    """With no overrides, the stack's settings pass the recipe's own coherence check."""
    services = compose_model(lib)["services"]
    worker_env = services["worker"]["environment"]
    loaded = SETTINGS[lib].from_env(worker_env).check()
    assert seconds(services["worker"]["stop_grace_period"]) == loaded.effective_stop_grace_period_s
    assert loaded.stop_grace_period_s > loaded.job_time_limit_s


def test_redis_requires_a_password_and_keeps_an_append_only_file(lib: str):
    redis = compose_model(lib)["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--requirepass" in command and "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_an_empty_port_publishes_on_any_free_loopback_port(lib: str):
    services = compose_model(lib, APP_PORT="", MONITOR_PORT="")["services"]
    for name in ("app", "monitor"):
        (port,) = services[name]["ports"]
        assert port["host_ip"] == "127.0.0.1" and not port.get("published"), port
