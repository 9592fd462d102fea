"""What every recipe's stdlib-only settings module promises, parametrized over the stacks."""

from __future__ import annotations

import pytest

from tests.static.helpers import recipe_module
from tests.static.helpers import recipe_settings as load


@pytest.mark.parametrize("limit", [1, 6, 300, 3600])
def test_the_default_grace_period_outlasts_the_time_limit(lib: str, limit: int):
    loaded = load(lib, JOB_TIME_LIMIT_S=str(limit)).check()
    assert loaded.stop_grace_period_s > limit


@pytest.mark.parametrize("limit", [1, 6, 300, 3600])
def test_a_killed_workers_job_comes_back_within_the_contracts_bound(lib: str, limit: int):
    assert load(lib, JOB_TIME_LIMIT_S=str(limit)).redelivery_after_kill_s < 2 * limit + 120


def test_a_grace_period_shorter_than_the_time_limit_is_refused_with_the_fix(lib: str):
    settings = recipe_module(lib, "settings")
    with pytest.raises(settings.ConfigError, match=r"STOP_GRACE_PERIOD_S=300 is too short .* at least 3\d\d"):
        load(lib, JOB_TIME_LIMIT_S="300", STOP_GRACE_PERIOD_S="300").check()


def test_backoff_grows_exponentially_from_the_base_and_jitter_never_reorders_it(lib: str):
    settings = recipe_module(lib, "settings")
    for jitter in (0.0, 0.5, 0.999):
        delays = [settings.retry_delay_s(n, 2.0, jitter) for n in range(3)]
        assert delays[0] == pytest.approx(2.0 * (1 + jitter * settings.RETRY_JITTER))
        assert delays[0] < delays[1] < delays[2]
    assert settings.retry_delay_s(0, 1.0, 0.999) < settings.retry_delay_s(1, 1.0, 0.0)


def test_jitter_spreads_retries(lib: str):
    retry_delay_s = recipe_module(lib, "settings").retry_delay_s
    assert len({retry_delay_s(1, 1.0) for _ in range(20)}) > 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_PASSWORD": ""}, "REDIS_PASSWORD is required"),
        ({"POSTGRES_PASSWORD": ""}, "POSTGRES_PASSWORD is required"),
        ({"JOB_TIME_LIMIT_S": "5m"}, "JOB_TIME_LIMIT_S must be a whole number"),
        ({"JOB_TIME_LIMIT_S": "0"}, "JOB_TIME_LIMIT_S must be at least 1"),
        ({"RETRY_BASE_S": "-1"}, "RETRY_BASE_S must be above 0"),
    ],
)
def test_bad_settings_are_refused_with_a_message_naming_them(lib: str, env: dict, message: str):
    settings = recipe_module(lib, "settings")
    with pytest.raises(settings.ConfigError, match=message):
        load(lib, **env)


def test_passwords_with_url_characters_survive_into_the_urls(lib: str):
    loaded = load(lib, REDIS_PASSWORD="a/b@c:d", POSTGRES_PASSWORD="e f#g")  # noqa: S106
    assert "a%2Fb%40c%3Ad@redis:6379" in loaded.redis_url
    assert "e%20f%23g@postgres" in loaded.postgres_dsn


def test_external_urls_are_used_as_given_and_need_no_compose_passwords(lib: str):
    """The Helm charts' external Redis and Postgres: whole URLs from a Secret."""
    settings = recipe_module(lib, "settings")
    loaded = settings.load(
        {"REDIS_URL": "rediss://u:s3cret@cache.example:6380/2", "DATABASE_URL": "postgresql://db.example/app"}
    )
    assert loaded.redis_url == "rediss://u:s3cret@cache.example:6380/2"
    assert loaded.postgres_dsn == "postgresql://db.example/app"
