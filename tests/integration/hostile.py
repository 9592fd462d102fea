"""Jobs an attacker with write access to Redis could plant, written the way each library stores
them: one whose payload is a pickle that runs a command when unpickled, one that names a
function outside the recipe's tasks (`os.system`) with the command as its argument, and one
the library cannot even read (a poison pill, which must not stop the worker)."""

from __future__ import annotations

import base64
import json
import pickle
import time
import uuid
import zlib
from collections.abc import Callable

import msgpack

from tests.integration.stack import Stack


class RunsCommandWhenUnpickled:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def celery_message(task: str, body: bytes, content_type: str, encoding: str) -> str:
    """A Celery protocol-2 message as kombu stores it in the Redis list of queue `default`."""
    task_id = str(uuid.uuid4())
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": encoding,
            "content-type": content_type,
            "headers": {"lang": "py", "task": task, "id": task_id, "root_id": task_id, "retries": 0},
            "properties": {
                "correlation_id": task_id,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": "default"},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def plant_pickled_celery_job(stack: Stack, command: str) -> None:
    body = pickle.dumps(RunsCommandWhenUnpickled(command))
    message = celery_message("demo", body, "application/x-python-serialize", "binary")
    stack.exec("redis", "redis-cli", "LPUSH", "default", message)


def plant_foreign_celery_job(stack: Stack, command: str) -> None:
    body = json.dumps([[command], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    message = celery_message("os.system", body.encode(), "application/json", "utf-8")
    stack.exec("redis", "redis-cli", "LPUSH", "default", message)


def plant_unreadable_celery_job(stack: Stack, command: str) -> None:
    stack.exec("redis", "redis-cli", "LPUSH", "default", "{this is not a message")


def plant_rq_job(stack: Stack, data: bytes, status: str = "queued") -> None:
    """An RQ job hash (data: the serialized call, zlib-compressed) and its id on the queue."""
    job_id = str(uuid.uuid4())
    key = f"rq:job:{job_id}"
    stack.exec_with_input("redis", zlib.compress(data), "redis-cli", "-x", "HSET", key, "data")
    stack.exec(
        "redis", "redis-cli", "HSET", key, "origin", "default", "status", status, "description", "planted"
    )
    stack.exec("redis", "redis-cli", "LPUSH", "rq:queue:default", job_id)


def plant_pickled_rq_job(stack: Stack, command: str) -> None:
    plant_rq_job(stack, pickle.dumps(RunsCommandWhenUnpickled(command)))


def plant_foreign_rq_job(stack: Stack, command: str) -> None:
    # RQ's JSON serializer stores (function path, instance, args, kwargs).
    plant_rq_job(stack, json.dumps(["os.system", None, [command], {}]).encode())


def plant_unreadable_rq_job(stack: Stack, command: str) -> None:
    # A status RQ does not know: restoring the job fails before anything is decoded.
    plant_rq_job(stack, json.dumps(["demo_rq.jobs.tick", None, [0], {}]).encode(), status="bogus")


def plant_dramatiq_message(stack: Stack, data: bytes, redis_message_id: str | None = None) -> None:
    """A message as Dramatiq's Redis broker stores it: data in the queue's hash, id in its list."""
    redis_message_id = redis_message_id or str(uuid.uuid4())
    stack.exec_with_input("redis", data, "redis-cli", "-x", "HSET", "dramatiq:default.msgs", redis_message_id)
    stack.exec("redis", "redis-cli", "RPUSH", "dramatiq:default", redis_message_id)


def dramatiq_message(actor_name: str, args: list, redis_message_id: str) -> bytes:
    return json.dumps(
        {
            "queue_name": "default",
            "actor_name": actor_name,
            "args": args,
            "kwargs": {},
            "options": {"redis_message_id": redis_message_id},
            "message_id": str(uuid.uuid4()),
            "message_timestamp": 0,
        }
    ).encode()


def plant_pickled_dramatiq_message(stack: Stack, command: str) -> None:
    plant_dramatiq_message(stack, pickle.dumps(RunsCommandWhenUnpickled(command)))


def plant_foreign_dramatiq_message(stack: Stack, command: str) -> None:
    redis_message_id = str(uuid.uuid4())
    plant_dramatiq_message(
        stack, dramatiq_message("os.system", [command], redis_message_id), redis_message_id
    )


def plant_unreadable_dramatiq_message(stack: Stack, command: str) -> None:
    plant_dramatiq_message(stack, b"{this is not a message")


def plant_arq_job(stack: Stack, payload: bytes) -> None:
    """A job as Arq stores it: its payload under arq:job:<id>, its id in the queue's sorted set."""
    job_id = uuid.uuid4().hex
    stack.exec_with_input("redis", payload, "redis-cli", "-x", "SET", f"arq:job:{job_id}")
    due_ms = str(int(time.time() * 1000))  # Arq never starts a job scored 0
    stack.exec("redis", "redis-cli", "ZADD", "arq:queue", due_ms, job_id)


def plant_pickled_arq_job(stack: Stack, command: str) -> None:
    plant_arq_job(stack, pickle.dumps(RunsCommandWhenUnpickled(command)))


def plant_foreign_arq_job(stack: Stack, command: str) -> None:
    # Arq's job fields: function, args, kwargs, try, enqueue time (ms).
    plant_arq_job(stack, msgpack.packb({"f": "os.system", "a": [command], "k": {}, "t": None, "et": 0}))


def plant_unreadable_arq_job(stack: Stack, command: str) -> None:
    plant_arq_job(stack, b"{this is not a job")


Planter = Callable[[Stack, str], None]
# Every stack needs both: the security tests fail for a stack that has none.
PLANTERS: dict[str, dict[str, Planter]] = {
    "celery": {
        "pickle": plant_pickled_celery_job,
        "foreign function": plant_foreign_celery_job,
        "unreadable": plant_unreadable_celery_job,
    },
    "rq": {
        "pickle": plant_pickled_rq_job,
        "foreign function": plant_foreign_rq_job,
        "unreadable": plant_unreadable_rq_job,
    },
    "dramatiq": {
        "pickle": plant_pickled_dramatiq_message,
        "foreign function": plant_foreign_dramatiq_message,
        "unreadable": plant_unreadable_dramatiq_message,
    },
    "arq": {
        "pickle": plant_pickled_arq_job,
        "foreign function": plant_foreign_arq_job,
        "unreadable": plant_unreadable_arq_job,
    },
}
