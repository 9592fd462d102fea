"""The Arq recipe's own derived timeouts (its settings module is standard library only)."""

from __future__ import annotations

import pytest

from tests.static.helpers import recipe_module, recipe_settings

settings = recipe_module("arq", "settings")


def load(**env: str):
    return recipe_settings("arq", **env).check()


@pytest.mark.parametrize("limit", [1, 6, 300, 3600])
def test_a_graceful_stop_waits_for_running_jobs_up_to_their_time_limit(limit: int):
    loaded = load(JOB_TIME_LIMIT_S=str(limit))
    assert limit < loaded.job_completion_wait_s < loaded.stop_grace_period_s


@pytest.mark.parametrize("limit", [1, 6, 300, 3600])
def test_a_running_job_is_never_picked_up_again_before_its_time_limit(limit: int):
    loaded = load(JOB_TIME_LIMIT_S=str(limit))
    # Arq's in-progress key lives job_timeout + 10 s; the recipe stops a job at the limit first.
    assert loaded.arq_job_timeout_s + settings.ARQ_IN_PROGRESS_MARGIN_S > loaded.arq_job_timeout_s > limit


def test_four_tries_per_job():
    assert settings.MAX_TRIES == 4


@pytest.mark.parametrize(
    ("interval", "fields"),
    [
        (2, {"second": set(range(0, 60, 2))}),
        (60, {"second": {0}}),
        (300, {"second": {0}, "minute": {0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55}}),
        (3600, {"second": {0}, "minute": {0}}),
        (21600, {"second": {0}, "minute": {0}, "hour": {0, 6, 12, 18}}),
    ],
)
def test_the_tick_interval_becomes_cron_fields_aligned_to_the_epoch(interval: int, fields: dict):
    assert load(TICK_INTERVAL_S=str(interval)).tick_cron_fields() == fields


@pytest.mark.parametrize("interval", [7, 90, 7200 + 60])
def test_a_tick_interval_that_no_cron_schedule_can_keep_is_refused(interval: int):
    with pytest.raises(settings.ConfigError, match=f"TICK_INTERVAL_S={interval} is not a cron schedule"):
        load(TICK_INTERVAL_S=str(interval))


def test_polling_reads_more_often_and_more_than_arqs_defaults():
    # Arq's defaults (0.5 s, 100 ids) cap one worker near 200 jobs a second.
    assert settings.POLL_DELAY_S < 0.5 and settings.QUEUE_READ_LIMIT / settings.POLL_DELAY_S > 200


def test_health_is_written_every_few_seconds():
    assert settings.HEALTH_CHECK_INTERVAL_S <= 10
