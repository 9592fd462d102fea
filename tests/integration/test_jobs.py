"""Job semantics: effects once, retries with growing backoff, dead letters, the time limit."""

from __future__ import annotations

import itertools
import math
import re
import uuid

import pytest

from tests.conftest import RETRY_JITTER, RETRY_TIMING_RESOLUTION_S, RETRY_WHOLE_SECONDS
from tests.integration.stack import Stack, wait_for

pytestmark = pytest.mark.integration


def new_key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_exponential_backoff(stack: Stack, starts: list[float]) -> None:
    """The gaps between attempts: base, 2 × base, 4 × base from RETRY_BASE_S, each stretched by
    the library's jitter (rounded up to a whole second where the library counts in seconds), give
    or take how precisely the library starts a retry on time."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    base = float(stack.env["RETRY_BASE_S"])
    slack, jitter = RETRY_TIMING_RESOLUTION_S[stack.lib], RETRY_JITTER[stack.lib]
    for n, gap in enumerate(gaps):
        longest = base * 2**n * (1 + jitter)
        if stack.lib in RETRY_WHOLE_SECONDS:
            longest = math.ceil(longest)
        assert base * 2**n - slack <= gap <= longest + slack, (n, gaps)
    if len(gaps) >= 3:
        assert gaps[2] > gaps[0], gaps
    if slack < 0.5:  # precise enough to see every step grow
        assert gaps == sorted(gaps) and len(set(gaps)) == len(gaps), gaps


def test_a_job_runs_and_records_its_effect_once(stack: Stack):
    key = new_key("once")
    accepted = stack.post_job(task="demo", key=key, sleep_s=0.2, fail_times=0)
    assert accepted["key"] == key and accepted["id"]
    done = wait_for(lambda: stack.effects(key), lambda e: e["effects"] == 1, timeout=30)
    assert done == {"key": key, "attempts": 1, "effects": 1}


def test_without_a_key_the_app_makes_one(stack: Stack):
    accepted = stack.post_job(task="demo", sleep_s=0)
    assert accepted["key"]
    wait_for(lambda: stack.effects(accepted["key"]), lambda e: e["effects"] == 1, timeout=30)


def test_send_report_runs_under_a_key_derived_from_its_arguments(stack: Stack):
    first = stack.post_job(task="send_report", user_id=42)
    second = stack.post_job(task="send_report", user_id=42)
    assert first["key"] == second["key"] and "42" in first["key"]
    assert stack.post_job(task="send_report", user_id=43)["key"] != first["key"]
    # Both jobs run (possibly side by side: the second then waits for the first, without failing,
    # and runs again); the report is mailed once.
    wait_for(
        lambda: stack.effects(first["key"]), lambda e: e["attempts"] >= 2 and e["effects"] == 1, timeout=30
    )
    wait_for(stack.depth, lambda d: d["in_progress"] == 0 and sum(d["queues"].values()) == 0, timeout=60)
    assert stack.effects(first["key"])["effects"] == 1
    assert not any(d["key"] == first["key"] for d in stack.dead_letters())


def test_unknown_key_has_no_attempts_and_no_effects(stack: Stack):
    key = new_key("never")
    assert stack.effects(key) == {"key": key, "attempts": 0, "effects": 0}


def test_transient_failures_are_retried_with_growing_delays(stack: Stack):
    key = new_key("transient")
    stack.post_job(task="demo", key=key, sleep_s=0, fail_times=2)
    done = wait_for(lambda: stack.effects(key), lambda e: e["effects"] == 1, timeout=60)
    assert done["attempts"] == 3
    assert_exponential_backoff(stack, stack.attempt_times(key))


def test_a_poison_job_is_dead_lettered_after_four_attempts_and_can_be_requeued(stack: Stack):
    key = new_key("poison")
    job = stack.post_job(task="demo", key=key, sleep_s=0, fail_times=4)

    def dead_entry():
        return next((d for d in stack.dead_letters() if d["id"] == job["id"]), None)

    entry = wait_for(dead_entry, lambda d: d is not None, timeout=60, interval=1)
    assert entry["key"] == key and entry["task"] == "demo"
    assert "fails on purpose" in entry["error"] and entry["failed_at"]
    assert stack.effects(key) == {"key": key, "attempts": 4, "effects": 0}
    assert stack.depth()["dead"] >= 1
    assert_exponential_backoff(stack, stack.attempt_times(key))

    assert stack.taskq("dlq", "requeue", job["id"]).strip() == "requeued 1"
    done = wait_for(lambda: stack.effects(key), lambda e: e["effects"] == 1, timeout=30)
    assert done["attempts"] == 5  # a fresh set of attempts: the fifth succeeds
    assert dead_entry() is None


def test_requeue_of_an_unknown_id_fails_clearly(stack: Stack):
    result = stack.exec("app", "taskq", "dlq", "requeue", "no-such-job", check=False)
    assert result.returncode != 0 and "no-such-job" in result.stderr


def test_a_job_over_the_time_limit_is_stopped_and_counts_as_failed(stack: Stack):
    key = new_key("slow")
    limit = stack.time_limit_s
    job = stack.post_job(task="demo", key=key, sleep_s=limit * 20, fail_times=0)
    # Stopped at the limit and retried: a second attempt starts long before the sleep could end.
    wait_for(lambda: stack.effects(key), lambda e: e["attempts"] >= 2, timeout=limit + 30)
    starts = stack.attempt_times(key)
    assert limit <= starts[1] - starts[0] < limit + 15, starts
    # After its last attempt it is a dead letter, with the time limit as its error.
    entry = wait_for(
        lambda: next((d for d in stack.dead_letters() if d["id"] == job["id"]), None),
        lambda d: d is not None,
        timeout=4 * (limit + 15) + 30,
        interval=1,
    )
    assert re.search("limit|timeout", entry["error"], re.IGNORECASE), entry
    assert stack.effects(key) == {"key": key, "attempts": 4, "effects": 0}
