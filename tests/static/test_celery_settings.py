"""The Celery recipe's derived timeouts and backoff, from its stdlib-only settings module."""

from __future__ import annotations

import pytest

from tests.static.helpers import recipe_module

settings = recipe_module("celery", "settings")
BASE_ENV = {"REDIS_PASSWORD": "r", "POSTGRES_PASSWORD": "p"}


def load(**env: str):
    return settings.load({**BASE_ENV, **env})


@pytest.mark.parametrize("limit", [1, 6, 300, 3600])
def test_visibility_timeout_outlasts_the_hard_limit_which_outlasts_the_soft_one(limit: int):
    loaded = load(JOB_TIME_LIMIT_S=str(limit))
    assert loaded.job_time_limit_s == limit
    assert limit < loaded.hard_time_limit_s < loaded.visibility_timeout_s


@pytest.mark.parametrize("limit", [1, 6, 300, 3600])
def test_the_default_grace_period_fits_and_sigkill_redelivery_meets_the_contract(limit: int):
    loaded = load(JOB_TIME_LIMIT_S=str(limit)).check()
    assert loaded.stop_grace_period_s > loaded.hard_time_limit_s
    assert loaded.redelivery_after_kill_s < 2 * limit + 120


def test_a_grace_period_shorter_than_the_hard_limit_is_refused_with_the_fix():
    with pytest.raises(settings.ConfigError, match=r"STOP_GRACE_PERIOD_S=300 .* at least 320"):
        load(JOB_TIME_LIMIT_S="300", STOP_GRACE_PERIOD_S="300").check()


@pytest.mark.parametrize(("limit", "base"), [(1, 1), (6, 1), (300, 1), (300, 30), (3600, 60)])
def test_the_visibility_timeout_outlasts_a_retry_waiting_for_a_process_then_running(limit: int, base: int):
    loaded = load(JOB_TIME_LIMIT_S=str(limit), RETRY_BASE_S=str(base))
    longest_unacknowledged = loaded.max_retry_delay_s + 2 * loaded.hard_time_limit_s
    assert loaded.visibility_timeout_s > longest_unacknowledged


def test_backoff_grows_exponentially_from_the_base_and_jitter_never_reorders_it():
    for jitter in (0.0, 0.5, 0.999):
        delays = [settings.retry_delay_s(n, 2.0, jitter) for n in range(3)]
        assert delays[0] == pytest.approx(2.0 * (1 + jitter / 2))
        assert delays[0] < delays[1] < delays[2]
    worst_then_best = (settings.retry_delay_s(0, 1.0, 0.999), settings.retry_delay_s(1, 1.0, 0.0))
    assert worst_then_best[0] < worst_then_best[1]


def test_jitter_spreads_retries():
    assert len({settings.retry_delay_s(1, 1.0) for _ in range(20)}) > 1


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
def test_bad_settings_are_refused_with_a_message_naming_them(env: dict, message: str):
    with pytest.raises(settings.ConfigError, match=message):
        load(**env)


def test_passwords_with_url_characters_survive_into_the_urls():
    loaded = load(REDIS_PASSWORD="a/b@c:d", POSTGRES_PASSWORD="e f#g")  # noqa: S106
    assert "a%2Fb%40c%3Ad@redis:6379" in loaded.broker_url
    assert "e%20f%23g@postgres" in loaded.postgres_dsn
