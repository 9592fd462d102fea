"""The toolkit's settings and every timeout derived from them, per library (taskq.settings is
standard library only: no job library is needed to check them)."""

from __future__ import annotations

import pytest

from taskq import settings as s
from taskq.errors import ConfigError
from taskq.settings import ArqSettings, CelerySettings, DramatiqSettings, RQSettings, Settings
from tests.static.helpers import SETTINGS, recipe_settings

LIMITS = [1, 6, 300, 3600]


@pytest.mark.parametrize("limit", LIMITS)
def test_the_default_grace_period_outlasts_the_time_limit_and_passes_the_check(lib: str, limit: int):
    loaded = recipe_settings(lib, JOB_TIME_LIMIT_S=str(limit)).check()
    assert loaded.effective_stop_grace_period_s > loaded.hard_time_limit_s >= limit


@pytest.mark.parametrize("limit", LIMITS)
def test_a_killed_workers_job_comes_back_within_the_contracts_bound(lib: str, limit: int):
    assert recipe_settings(lib, JOB_TIME_LIMIT_S=str(limit)).redelivery_after_kill_s < 2 * limit + 120


@pytest.mark.parametrize("limit", LIMITS)
def test_the_idempotency_lease_outlasts_the_hard_limit_of_a_live_run(lib: str, limit: int):
    loaded = recipe_settings(lib, JOB_TIME_LIMIT_S=str(limit))
    assert loaded.hard_time_limit_s < loaded.lease_s == loaded.hard_time_limit_s + s.LEASE_MARGIN_S


def test_a_grace_period_shorter_than_the_time_limit_is_refused_with_the_fix(lib: str):
    with pytest.raises(
        ConfigError, match=r"STOP_GRACE_PERIOD_S=300 is too short .* at least 3\d\d .* to 3\d\d"
    ):
        recipe_settings(lib, JOB_TIME_LIMIT_S="300", STOP_GRACE_PERIOD_S="300").check()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JOB_TIME_LIMIT_S": "5m"}, "JOB_TIME_LIMIT_S must be a whole number"),
        ({"JOB_TIME_LIMIT_S": "0"}, "JOB_TIME_LIMIT_S must be at least 1"),
        ({"RETRY_BASE_S": "-1"}, "RETRY_BASE_S must be above 0"),
        ({"RETRY_BASE_S": "inf"}, "RETRY_BASE_S must be above 0"),
        ({"STOP_GRACE_PERIOD_S": "soon"}, "STOP_GRACE_PERIOD_S must be a whole number"),
        ({"DATABASE_URL": "mysql://db/app"}, "DATABASE_URL must point at PostgreSQL"),
    ],
)
def test_bad_settings_are_refused_with_a_message_naming_them(lib: str, env: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        recipe_settings(lib, **env)


def test_settings_read_nothing_until_asked_and_name_what_is_missing():
    """No variable is required to load settings: Redis and Postgres are asked for by the pieces that
    use them, and the error names the variable and the form it takes."""
    loaded = Settings.from_env({})
    assert loaded.redis_url is None and loaded.database_url is None and loaded.job_time_limit_s == 300
    with pytest.raises(ConfigError, match=r"REDIS_URL is not set: set it .*redis://"):
        loaded.require_redis_url()
    with pytest.raises(ConfigError, match=r"DATABASE_URL is not set.*postgresql://"):
        loaded.require_database_url()


def test_passwords_with_url_characters_survive_into_the_urls_and_the_port_is_honoured(lib: str):
    env = {
        "REDIS_PASSWORD": "a/b@c:d",
        "POSTGRES_PASSWORD": "e f#g",
        "POSTGRES_PORT": "6543",
        "POSTGRES_USER": "app",
    }
    loaded = recipe_settings(lib, **env)
    assert "a%2Fb%40c%3Ad@redis:6379" in loaded.redis_url
    assert loaded.database_url == "postgresql://app:e%20f%23g@postgres:6543/app"


def test_external_urls_are_used_as_given_and_need_no_compose_passwords(lib: str):
    loaded = SETTINGS[lib].from_env(
        {
            "REDIS_URL": "rediss://u:s3cret@cache.example:6380/2",
            "DATABASE_URL": "postgres://db.example:5433/app",
        }
    )
    assert loaded.redis_url == "rediss://u:s3cret@cache.example:6380/2"
    assert loaded.database_url == "postgresql://db.example:5433/app"


# --- per library ---------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", LIMITS)
def test_celery_visibility_timeout_outlasts_a_retry_waiting_for_a_process_then_running(limit: int):
    loaded = CelerySettings.from_env({"JOB_TIME_LIMIT_S": str(limit)})
    assert limit < loaded.hard_time_limit_s < loaded.visibility_timeout_s
    assert loaded.visibility_timeout_s > loaded.retry.max_delay_s + 2 * loaded.hard_time_limit_s
    # The longest countdown a task may be sent with is what the timeout was sized for.
    assert loaded.longest_countdown_s >= loaded.retry.max_delay_s
    assert loaded.longest_countdown_s + 2 * loaded.hard_time_limit_s < loaded.visibility_timeout_s


def test_a_deferral_never_waits_longer_than_celerys_longest_countdown():
    loaded = CelerySettings.from_env({"JOB_TIME_LIMIT_S": "300"})
    assert loaded.retry.defer_s(loaded.lease_s) <= loaded.longest_countdown_s
    assert loaded.retry.defer_s(0) > 0


@pytest.mark.parametrize("limit", LIMITS)
def test_dramatiq_shutdown_timeout_is_in_milliseconds_and_outlasts_the_time_limit(limit: int):
    loaded = DramatiqSettings.from_env({"JOB_TIME_LIMIT_S": str(limit)}).check()
    assert limit * 1000 < loaded.worker_shutdown_timeout_ms < loaded.effective_stop_grace_period_s * 1000
    assert loaded.heartbeat_timeout_s > limit and loaded.heartbeat_timeout_s >= 60


def test_dramatiq_shutdown_timeout_follows_the_grace_period():
    env = {"JOB_TIME_LIMIT_S": "60"}
    assert (
        DramatiqSettings.from_env({**env, "STOP_GRACE_PERIOD_S": "100"}).worker_shutdown_timeout_ms == 90_000
    )
    assert (
        DramatiqSettings.from_env({**env, "STOP_GRACE_PERIOD_S": "1000"}).worker_shutdown_timeout_ms
        == 990_000
    )


def test_dramatiq_maintenance_polls_and_retention_beat_its_defaults():
    assert s.DRAMATIQ_MAINTENANCE_INTERVAL_S * 10 <= s.DRAMATIQ_MIN_HEARTBEAT_TIMEOUT_S
    assert s.DRAMATIQ_POLL_MS < 1000 and s.DRAMATIQ_DEAD_MESSAGE_TTL_S > 7 * 24 * 3600


def test_rq_claims_maintenance_and_retention_beat_its_defaults():
    assert s.RQ_JOB_MONITORING_INTERVAL_S < s.RQ_HEARTBEAT_MARGIN_S
    assert s.RQ_MAINTENANCE_INTERVAL_S < 600 and s.RQ_WORKER_TTL_S < 420 and s.RQ_IDLE_WAIT_S < 60
    assert s.RQ_FAILURE_TTL_S >= 7 * 24 * 3600
    for limit in (1, 6, 300):
        assert RQSettings.from_env({"JOB_TIME_LIMIT_S": str(limit)}).redelivery_after_kill_s <= 100


@pytest.mark.parametrize("limit", LIMITS)
def test_arq_waits_for_running_jobs_and_never_picks_a_running_one_up_again(limit: int):
    loaded = ArqSettings.from_env({"JOB_TIME_LIMIT_S": str(limit)}).check()
    assert limit < loaded.job_completion_wait_s < loaded.effective_stop_grace_period_s
    assert (
        loaded.arq_job_timeout_s + s.ARQ_IN_PROGRESS_MARGIN_S
        > loaded.lease_s
        > loaded.arq_job_timeout_s
        > limit
    )


def test_arq_polls_more_often_and_reads_more_than_its_defaults():
    # Arq's defaults (0.5 s, 100 ids) cap one worker near 200 jobs a second.
    assert s.ARQ_POLL_DELAY_S < 0.5 and s.ARQ_QUEUE_READ_LIMIT / s.ARQ_POLL_DELAY_S > 200
    assert s.ARQ_HEALTH_CHECK_INTERVAL_S <= 10
