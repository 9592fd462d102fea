"""Bad input is refused with a clear answer, and nothing of it is enqueued."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.integration.stack import Stack

pytestmark = pytest.mark.integration


def post_raw(stack: Stack, body: bytes) -> requests.Response:
    return requests.post(
        f"{stack.app_url}/jobs", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )


def assert_never_ran(stack: Stack, *keys: str) -> None:
    time.sleep(2)  # a job that had been enqueued would have started by now
    for key in keys:
        assert stack.effects(key)["attempts"] == 0, key


def test_a_body_over_64_kib_is_refused_with_413(stack: Stack):
    key = f"big-{uuid.uuid4().hex[:8]}"
    job = f'{{"task": "demo", "key": "{key}", "sleep_s": 0}}'.encode()
    body = job[:-1] + b" " * (64 * 1024) + b"}"  # a valid job, padded past the limit
    response = post_raw(stack, body)
    assert response.status_code == 413
    assert "64" in response.json()["detail"] or "65536" in response.json()["detail"]
    assert post_raw(stack, job).status_code == 202  # the same job, unpadded, is fine
    time.sleep(1)
    assert stack.effects(key)["attempts"] == 1  # only the unpadded one ran


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"task": "mine_bitcoin"}, "mine_bitcoin"),
        ({"task": "demo", "sleep_s": "0.5"}, "sleep_s"),
        ({"task": "demo", "fail_times": 1.5}, "fail_times"),
        ({"task": "demo", "sleep_s": -1}, "sleep_s"),
        ({"task": "demo", "sleep": 1}, "sleep"),
        ({"task": "send_report", "user_id": "42"}, "user_id"),
        ({"task": "send_report"}, "user_id"),
        ({"task": "demo", "key": "../etc/passwd"}, "key"),
    ],
)
def test_unknown_tasks_and_wrong_types_are_refused_with_422(stack: Stack, body: dict, names: str):
    key = f"bad-{uuid.uuid4().hex[:8]}"
    body = {"key": key, **body} if "key" not in body else body
    response = requests.post(f"{stack.app_url}/jobs", json=body, timeout=10)
    assert response.status_code == 422, response.text
    assert names in response.text
    assert_never_ran(stack, key)


def test_malformed_json_is_refused(stack: Stack):
    response = post_raw(stack, b'{"task": "demo", "key": "malformed"')
    assert response.status_code in (400, 422)
    assert "json" in response.text.lower()
    assert_never_ran(stack, "malformed")
