"""The Dramatiq recipe's own derived timeouts (its settings module is standard library only)."""

from __future__ import annotations

import pytest

from tests.static.helpers import recipe_module, recipe_settings

settings = recipe_module("dramatiq", "settings")


def load(**env: str):
    return recipe_settings("dramatiq", **env).check()


@pytest.mark.parametrize("limit", [1, 6, 300, 3600])
def test_the_shutdown_timeout_is_in_milliseconds_and_outlasts_the_time_limit(limit: int):
    loaded = load(JOB_TIME_LIMIT_S=str(limit))
    # Dramatiq stops waiting for running actors after --worker-shutdown-timeout milliseconds.
    assert (
        loaded.job_time_limit_s * 1000 < loaded.worker_shutdown_timeout_ms < loaded.stop_grace_period_s * 1000
    )


def test_the_shutdown_timeout_follows_the_grace_period():
    assert load(JOB_TIME_LIMIT_S="60", STOP_GRACE_PERIOD_S="100").worker_shutdown_timeout_ms == 90_000
    assert load(JOB_TIME_LIMIT_S="60", STOP_GRACE_PERIOD_S="1000").worker_shutdown_timeout_ms == 990_000


@pytest.mark.parametrize("limit", [1, 6, 300, 3600])
def test_a_running_message_is_never_recovered_before_its_time_limit(limit: int):
    loaded = load(JOB_TIME_LIMIT_S=str(limit))
    assert loaded.heartbeat_timeout_s > limit and loaded.heartbeat_timeout_s >= 60


def test_maintenance_runs_many_times_per_heartbeat_timeout():
    assert settings.MAINTENANCE_INTERVAL_S * 10 <= settings.MIN_HEARTBEAT_TIMEOUT_S


def test_the_time_limit_and_backoff_are_given_to_dramatiq_in_milliseconds():
    loaded = load(JOB_TIME_LIMIT_S="6", RETRY_BASE_S="1.5")
    assert loaded.time_limit_ms == 6000 and loaded.min_backoff_ms == 1500


def test_an_idle_consumer_polls_faster_than_dramatiqs_default():
    assert settings.WORKER_POLL_MS < 1000


def test_dead_letters_are_kept_longer_than_dramatiqs_week():
    assert settings.DEAD_MESSAGE_TTL_S > 7 * 24 * 3600
