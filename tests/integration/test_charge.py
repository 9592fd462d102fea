"""`charge`, a user's real task: an external payment, then an order row, through the toolkit's
idempotency helper. Whatever happens (a crash on either side of the commit, a second enqueue,
two deliveries at once, a run frozen past its lease, a retry, a requeue), the payment provider
charges once and the order is written once."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.conftest import MEASUREMENTS
from tests.integration.exporter import metrics
from tests.integration.stack import Stack, wait_for

pytestmark = pytest.mark.integration


def new_key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def charges(stack: Stack, key: str) -> dict:
    response = requests.get(f"{stack.app_url}/charges/{key}", timeout=10)
    response.raise_for_status()
    return response.json()


def expected(key: str, *, attempts: int, psp_requests: int, psp_charges: int, orders: int) -> dict:
    return {
        "key": key,
        "attempts": attempts,
        "psp_requests": psp_requests,
        "psp_charges": psp_charges,
        "orders": orders,
    }


def post_charge(
    stack: Stack, key: str, amount_cents: int = 500, sleep_s: float = 0, fail_times: int = 0
) -> dict:
    return stack.post_job(
        task="charge", key=key, amount_cents=amount_cents, sleep_s=sleep_s, fail_times=fail_times
    )


def settled(stack: Stack) -> dict:
    """Nothing queued and nothing running: every delivery of every job has finished."""
    return wait_for(
        stack.depth,
        lambda d: d["in_progress"] == 0 and sum(d["queues"].values()) == 0,
        timeout=120,
        interval=0.5,
    )


def dead_letter(stack: Stack, job_id: str) -> dict | None:
    return next((d for d in stack.dead_letters() if d["id"] == job_id), None)


def test_a_charge_charges_once_and_writes_one_order(stack: Stack):
    key = new_key("charge")
    post_charge(stack, key)
    done = wait_for(lambda: charges(stack, key), lambda c: c["orders"] == 1, timeout=30)
    assert done == expected(key, attempts=1, psp_requests=1, psp_charges=1, orders=1)


def test_unknown_key_has_no_charges(stack: Stack):
    key = new_key("never")
    assert charges(stack, key) == expected(key, attempts=0, psp_requests=0, psp_charges=0, orders=0)


def test_killed_after_the_payment_and_before_the_commit_it_is_stuck_then_charged_once(stack: Stack):
    """SIGKILLed between the payment and the order's commit, and no other process of the stack runs
    (a Dramatiq scheduler's enqueues would put the job back in its queue by maintenance): the job
    stays taken past the time a job may run, or its worker's heartbeat, and the exporter shows it
    in progress, then stuck. A worker started: the job runs again within the contract's
    redelivery bound counted from the kill, and calls the provider again with the same
    idempotency key: two requests, one charge, one order; nothing is stuck."""
    key, stuck = new_key("kill-before-commit"), "taskq_jobs_stuck"
    bound = 2 * stack.time_limit_s + 120  # the contract's redelivery bound
    with stack.scheduler_stopped():
        try:
            post_charge(stack, key, sleep_s=4)
            wait_for(lambda: charges(stack, key), lambda c: c["psp_requests"] == 1, timeout=30, interval=0.1)
            running = metrics(stack)
            assert running.total("taskq_jobs_in_progress") >= 1 and running.total(stuck) == 0
            killed_at = time.monotonic()
            stack.compose("kill", "--signal", "SIGKILL", "worker")
            wait_for(lambda: metrics(stack), lambda m: m.total(stuck) >= 1, timeout=bound, interval=1)
        finally:
            stack.compose("start", "worker")
    done = wait_for(lambda: charges(stack, key), lambda c: c["orders"] >= 1, timeout=bound, interval=1)
    after = time.monotonic() - killed_at
    MEASUREMENTS.append(
        f"{stack.lib}: SIGKILLed charge done again {after:.0f} s after the kill (bound {bound} s)"
    )
    assert after < bound
    assert done["psp_requests"] == 2 and done["psp_charges"] == 1 and done["orders"] == 1, done
    assert done["attempts"] >= 2
    wait_for(lambda: metrics(stack), lambda m: m.total(stuck) == 0, timeout=60, interval=1)


def test_killed_after_the_commit_and_before_the_ack_the_redelivery_skips_the_work(stack: Stack):
    """Redis stopped after the payment, so the worker commits the order but cannot acknowledge the
    job (a paused Redis would still take the acknowledgement into its socket buffer); killed
    then. The redelivered job finds the key done: no second payment request."""
    key = new_key("kill-after-commit")
    with stack.scheduler_stopped():
        post_charge(stack, key, sleep_s=3)
        wait_for(lambda: charges(stack, key), lambda c: c["psp_requests"] == 1, timeout=30, interval=0.1)
        stack.compose("stop", "--timeout", "1", "redis")
        try:
            wait_for(lambda: charges(stack, key), lambda c: c["orders"] == 1, timeout=30, interval=0.1)
            stack.compose("kill", "--signal", "SIGKILL", "worker")
        finally:
            stack.compose("start", "redis")
        redis = stack.container_id("redis")
        wait_for(lambda: stack.health(redis), lambda health: health == "healthy", timeout=60, interval=0.5)
    stack.compose("start", "worker")
    bound = 2 * stack.time_limit_s + 120
    done = wait_for(lambda: charges(stack, key), lambda c: c["attempts"] >= 2, timeout=bound, interval=1)
    time.sleep(1)  # the redelivery would have called the provider by now, had it not skipped
    assert charges(stack, key) == {**done, "psp_requests": 1, "psp_charges": 1, "orders": 1}


def test_the_same_key_enqueued_again_is_skipped(stack: Stack):
    key = new_key("again")
    post_charge(stack, key)
    wait_for(lambda: charges(stack, key), lambda c: c["orders"] == 1, timeout=30)
    second = post_charge(stack, key)
    wait_for(lambda: charges(stack, key), lambda c: c["attempts"] == 2, timeout=30)
    settled(stack)
    assert charges(stack, key) == expected(key, attempts=2, psp_requests=1, psp_charges=1, orders=1)
    assert dead_letter(stack, second["id"]) is None


def test_the_same_key_twice_at_once_is_worked_once_and_the_other_waits(stack: Stack):
    """Two workers, the same charge twice at once: one run does the work, the other finds the key
    held, waits without failing, and then finds it done."""
    stack.compose("up", "--detach", "--wait", "--no-recreate", "--scale", "worker=2", "worker")
    try:
        key = new_key("at-once")
        jobs = [post_charge(stack, key, sleep_s=3) for _ in range(2)]
        wait_for(lambda: charges(stack, key), lambda c: c["orders"] == 1, timeout=60)
        settled(stack)
        done = charges(stack, key)
        assert done["psp_requests"] == 1 and done["psp_charges"] == 1 and done["orders"] == 1, done
        assert done["attempts"] >= 2
        assert all(dead_letter(stack, job["id"]) is None for job in jobs)
    finally:
        stack.compose("up", "--detach", "--wait", "--no-recreate", "--scale", "worker=1", "worker")


def test_a_run_frozen_past_its_lease_cannot_commit(stack: Stack):
    """The worker running a charge is frozen (docker pause) until its lease has ended; meanwhile a
    second worker runs the same charge and commits. Thawed, the first run's commit is refused and
    rolled back: one order."""
    with stack.scheduler_stopped():
        frozen_past_the_lease(stack)


def frozen_past_the_lease(stack: Stack) -> None:
    key = new_key("frozen")
    post_charge(stack, key, sleep_s=3)
    wait_for(lambda: charges(stack, key), lambda c: c["psp_requests"] == 1, timeout=30, interval=0.1)
    frozen = stack.container_id("worker")
    stack.docker("pause", frozen)
    second = None
    try:
        # A one-off second worker (scaling the service would try to start the frozen one).
        stack.compose("run", "--detach", "--no-deps", "worker")
        second = stack.one_off_container_id("worker")
        wait_for(lambda: stack.health(second), lambda health: health == "healthy", timeout=90, interval=1)
        post_charge(stack, key, sleep_s=0)
        # The second worker waits out the frozen run's lease, then pays (same key) and commits.
        done = wait_for(lambda: charges(stack, key), lambda c: c["orders"] == 1, timeout=120, interval=0.5)
        assert done["psp_requests"] == 2, done
    finally:
        stack.docker("unpause", frozen)
    try:
        wait_for(lambda: stack.health(frozen), lambda health: health == "healthy", timeout=90, interval=1)
        settled(stack)
        time.sleep(1)
        done = charges(stack, key)
        assert done["orders"] == 1 and done["psp_charges"] == 1 and done["psp_requests"] == 2, done
    finally:
        if second is not None:
            stack.docker("stop", "--time", str(stack.grace_period_s), second)
            stack.docker("rm", "-f", second)


def test_a_transient_failure_after_the_payment_charges_once(stack: Stack):
    key = new_key("transient")
    post_charge(stack, key, fail_times=1)
    done = wait_for(lambda: charges(stack, key), lambda c: c["orders"] == 1, timeout=60)
    assert done == expected(key, attempts=2, psp_requests=2, psp_charges=1, orders=1)


def test_the_same_key_with_another_amount_is_a_dead_letter_at_once(stack: Stack):
    key = new_key("conflict")
    post_charge(stack, key, amount_cents=500)
    wait_for(lambda: charges(stack, key), lambda c: c["orders"] == 1, timeout=30)
    other = post_charge(stack, key, amount_cents=700)
    entry = wait_for(
        lambda: dead_letter(stack, other["id"]), lambda d: d is not None, timeout=30, interval=0.5
    )
    assert "other arguments" in entry["error"] and entry["key"] == key and entry["task"] == "charge"
    time.sleep(2)  # a retry would have started by now
    assert charges(stack, key) == expected(key, attempts=2, psp_requests=1, psp_charges=1, orders=1)


def test_a_requeued_dead_letter_whose_key_is_done_is_reported_and_skips_its_work(stack: Stack):
    key = new_key("requeue-done")
    failed = post_charge(stack, key, fail_times=4)
    wait_for(lambda: dead_letter(stack, failed["id"]), lambda d: d is not None, timeout=60, interval=1)
    assert charges(stack, key) == expected(key, attempts=4, psp_requests=4, psp_charges=1, orders=0)
    # The order is placed again, and this time it goes through.
    post_charge(stack, key)
    wait_for(lambda: charges(stack, key), lambda c: c["orders"] == 1, timeout=30)

    report = stack.taskq("dlq", "requeue", failed["id"])
    assert report.splitlines()[0] == "requeued 1"
    assert f"already done: {failed['id']} (charge {key})" in report, report
    wait_for(lambda: charges(stack, key), lambda c: c["attempts"] == 6, timeout=30)
    settled(stack)
    assert charges(stack, key) == expected(key, attempts=6, psp_requests=5, psp_charges=1, orders=1)
    assert dead_letter(stack, failed["id"]) is None
