"""A user's repository to adopt the toolkit into (its own Dockerfile, ignore files, compose file
and .env, all committed), and the adopt command as the README gives it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

USER_FILES = {
    "Dockerfile": "FROM python:3.12-slim\nCOPY . /src\nRUN pip install /src\n",
    ".dockerignore": "# the app's own\n.git\n**/__pycache__\n.venv",  # no newline at the end
    ".gitignore": ".venv/\n__pycache__/\n",
    "compose.yaml": "services:\n  web:\n    build: .\n    ports: ['8000:8000']\n",
    ".env": "DJANGO_SECRET_KEY=theirs\n",
    "deploy/k8s/web.yaml": "kind: Deployment\n",
    "src/app/__init__.py": "",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A user's repository, everything committed."""
    repo = tmp_path / "app"
    for name, content in USER_FILES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(content)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@example.com", "commit", "-qm", "app")
    return repo


def adopt(repo: Path, lib: str = "celery", **options: str) -> subprocess.CompletedProcess:
    """The command as the README gives it: make adopt LIB=… DEST=… [DRY_RUN=1] [FORCE=1]."""
    args = [f"{name}={value}" for name, value in options.items()]
    return subprocess.run(
        ["make", "-s", "-C", str(REPO), "adopt", f"LIB={lib}", f"DEST={repo}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
