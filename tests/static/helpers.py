from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.conftest import REPO

# The recipes' shared package, for settings modules that import its (standard library) config.
sys.path.insert(0, str(REPO / "recipes" / "common"))

DUMMY_SECRETS = {"REDIS_PASSWORD": "r", "POSTGRES_PASSWORD": "p", "MONITOR_PASSWORD": "m"}


@functools.cache  # one module object per file, so its exception classes compare equal
def recipe_module(lib: str, name: str) -> ModuleType:
    """Import a stdlib-only module of a recipe (lib "common": the shared package) on its own,
    without the recipe's package and its dependencies."""
    path = REPO / "recipes" / lib / f"taskq_{lib}" / f"{name}.py"
    module_name = f"recipe_{lib}_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def recipe_settings(lib: str, **env: str):
    """A recipe's own settings, loaded from env plus the secrets every recipe requires."""
    return recipe_module(lib, "settings").load({**DUMMY_SECRETS, **env})


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
