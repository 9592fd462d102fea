"""The Celery recipe's own derived timeouts (its settings module is standard library only)."""

from __future__ import annotations

import pytest

from tests.static.helpers import recipe_module, recipe_settings

settings = recipe_module("celery", "settings")


def load(**env: str):
    return recipe_settings("celery", **env)


@pytest.mark.parametrize("limit", [1, 6, 300, 3600])
def test_visibility_timeout_outlasts_the_hard_limit_which_outlasts_the_soft_one(limit: int):
    loaded = load(JOB_TIME_LIMIT_S=str(limit))
    assert loaded.job_time_limit_s == limit
    assert limit < loaded.hard_time_limit_s < loaded.visibility_timeout_s


@pytest.mark.parametrize(("limit", "base"), [(1, 1), (6, 1), (300, 1), (300, 30), (3600, 60)])
def test_the_visibility_timeout_outlasts_a_retry_waiting_for_a_process_then_running(limit: int, base: int):
    loaded = load(JOB_TIME_LIMIT_S=str(limit), RETRY_BASE_S=str(base))
    longest_unacknowledged = loaded.max_retry_delay_s + 2 * loaded.hard_time_limit_s
    assert loaded.visibility_timeout_s > longest_unacknowledged


def test_the_grace_period_also_outlasts_the_hard_limit():
    loaded = load(JOB_TIME_LIMIT_S="300").check()
    assert loaded.stop_grace_period_s > loaded.hard_time_limit_s
