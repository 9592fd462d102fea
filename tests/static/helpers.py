from __future__ import annotations

import json
import subprocess
from pathlib import Path

from taskq.settings import ArqSettings, CelerySettings, DramatiqSettings, RQSettings, Settings
from tests.conftest import REPO

DUMMY_SECRETS = {"REDIS_PASSWORD": "r", "POSTGRES_PASSWORD": "p", "MONITOR_PASSWORD": "m"}
SETTINGS: dict[str, type[Settings]] = {
    "celery": CelerySettings,
    "rq": RQSettings,
    "dramatiq": DramatiqSettings,
    "arq": ArqSettings,
}


def recipe_settings(lib: str, **env: str) -> Settings:
    """A library's settings, from env plus the secrets every stack requires."""
    return SETTINGS[lib].from_env({**DUMMY_SECRETS, **env})


def compose_config(lib: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`docker compose config` of a stack: needs the Docker CLI and Compose, not an engine."""
    clean_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home()), **env}
    return subprocess.run(
        [
            "docker",
            "compose",
            "--project-directory",
            str(REPO / "compose" / lib),
            # Not the developer's .env: the model under test is the one this environment gives.
            "--env-file",
            "/dev/null",
            "config",
            "--format",
            "json",
        ],
        env=clean_env,
        capture_output=True,
        text=True,
        check=False,
    )


def compose_model(lib: str, **env: str) -> dict:
    result = compose_config(lib, {**DUMMY_SECRETS, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
