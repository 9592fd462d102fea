"""Postgres and Redis for the toolkit's tests, each a container started from the same image as the
stacks use (official, or the stand-in built from Debian packages), published on a free loopback
port, and removed at the end of the session."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.conftest import REPO


def image_variables() -> dict[str, str]:
    """PYTHON_IMAGE and friends, from the one switch between official and stand-in images."""
    out = subprocess.run(
        [str(REPO / "scripts" / "images.sh"), "env"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=120)


def wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(0.2)


@contextmanager
def container(
    image: str, port: int, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """(container id, "127.0.0.1:PORT") of a running container."""
    env_args = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    cid = docker("run", "-d", "--rm", "-p", f"127.0.0.1::{port}", *env_args, image, *args).stdout.strip()
    try:
        address = docker("port", cid, str(port)).stdout.split()[0]
        yield cid, address
    finally:
        docker("rm", "-f", "-v", cid, check=False)


@contextmanager
def postgres() -> Iterator[str]:
    """A Postgres URL (database and user `taskq`)."""
    password = secrets.token_hex(8)
    image = image_variables()["POSTGRES_IMAGE"]
    env = {"POSTGRES_USER": "taskq", "POSTGRES_DB": "taskq", "POSTGRES_PASSWORD": password}
    with container(image, 5432, env=env) as (cid, address):
        wait_until(
            lambda: (
                docker("exec", cid, "pg_isready", "-h", "127.0.0.1", "-U", "taskq", check=False).returncode
                == 0
            ),
            60,
            "postgres",
        )
        yield f"postgresql://taskq:{password}@{address}/taskq"


@contextmanager
def redis() -> Iterator[str]:
    """A Redis URL, with a password."""
    password = secrets.token_hex(8)
    image = image_variables()["REDIS_IMAGE"]
    with container(image, 6379, "redis-server", "--requirepass", password) as (cid, address):
        wait_until(
            lambda: (
                "PONG"
                in docker(
                    "exec", "-e", f"REDISCLI_AUTH={password}", cid, "redis-cli", "ping", check=False
                ).stdout
            ),
            30,
            "redis",
        )
        yield f"redis://:{password}@{address}/0"
