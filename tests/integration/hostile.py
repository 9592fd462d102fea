"""Messages an attacker with write access to Redis could plant, one writer per library."""

from __future__ import annotations

import base64
import json
import pickle
import uuid

from tests.integration.stack import Stack


class RunsCommandWhenUnpickled:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def pickled_celery_message(queue: str, command: str) -> str:
    """A Celery protocol-2 message as kombu stores it in Redis, with a pickle as its body."""
    task_id = str(uuid.uuid4())
    body = pickle.dumps(RunsCommandWhenUnpickled(command))
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "binary",
            "content-type": "application/x-python-serialize",
            "headers": {"lang": "py", "task": "demo", "id": task_id, "root_id": task_id, "retries": 0},
            "properties": {
                "correlation_id": task_id,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def push_pickled_celery_job(stack: Stack, command: str) -> None:
    stack.exec("redis", "redis-cli", "LPUSH", "default", pickled_celery_message("default", command))


# Every stack needs one: the security test fails for a stack that has none.
PICKLED_JOB_WRITERS = {"celery": push_pickled_celery_job}
