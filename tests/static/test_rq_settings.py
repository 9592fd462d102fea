"""The RQ recipe's own derived intervals (its settings module is standard library only)."""

from __future__ import annotations

import pytest

from tests.static.helpers import recipe_module, recipe_settings

settings = recipe_module("rq", "settings")


def test_a_running_jobs_claim_is_renewed_well_before_it_lapses():
    # RQ renews the claim every JOB_MONITORING_INTERVAL_S for that long plus 60 s.
    assert settings.JOB_MONITORING_INTERVAL_S < settings.RQ_HEARTBEAT_MARGIN_S


def test_maintenance_and_heartbeats_run_far_more_often_than_rqs_defaults():
    assert settings.MAINTENANCE_INTERVAL_S < 600 and settings.WORKER_TTL_S < 420
    # An idle worker wakes every WORKER_TTL_S - 15 s: the healthcheck allows 60 s.
    assert settings.WORKER_TTL_S - 15 < 60


@pytest.mark.parametrize("limit", [1, 6, 300])
def test_redelivery_does_not_grow_with_the_time_limit(limit: int):
    loaded = recipe_settings("rq", JOB_TIME_LIMIT_S=str(limit))
    assert loaded.redelivery_after_kill_s <= 100


def test_dead_letters_are_kept_at_least_a_week():
    assert settings.FAILURE_TTL_S >= 7 * 24 * 3600
