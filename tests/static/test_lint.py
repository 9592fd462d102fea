"""Linters over everything the project ships. Each runs the pinned tool from the test venv."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.static.helpers import DUMMY_SECRETS, compose_config

BIN = Path(sys.executable).parent
DOCKERFILES = [REPO / "recipes" / "demos" / "Dockerfile", *sorted(REPO.glob("scripts/standins/*/Dockerfile"))]
SHELL_SCRIPTS = [*sorted(REPO.glob("scripts/**/*.sh")), REPO / ".ci" / "run"]


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)


def test_there_is_something_to_lint():
    assert all(p.exists() for p in DOCKERFILES) and len(DOCKERFILES) >= 2 and len(SHELL_SCRIPTS) >= 3


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_hadolint(dockerfile: Path):
    result = run(str(BIN / "hadolint"), "--failure-threshold", "warning", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: scripts/host-setup.sh installs it"
    result = run(shellcheck, "--severity=style", "--external-sources", *map(str, SHELL_SCRIPTS))
    assert result.returncode == 0, result.stdout


def test_yamllint():
    result = run(str(BIN / "yamllint"), "--strict", "compose", "helm", ".yamllint.yaml")
    assert result.returncode == 0, result.stdout


def test_ruff_check():
    result = run(str(BIN / "ruff"), "check", "recipes", "tests", "scripts")
    assert result.returncode == 0, result.stdout


def test_ruff_format():
    result = run(str(BIN / "ruff"), "format", "--check", "recipes", "tests", "scripts")
    assert result.returncode == 0, result.stdout


def test_compose_config_is_valid(lib: str):
    result = compose_config(lib, DUMMY_SECRETS)
    assert result.returncode == 0, result.stderr
