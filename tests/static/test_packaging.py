"""The toolkit as one distribution: built from the checkout, it holds the toolkit and nothing of
the demos, declares an extra per library and adapter, and installs a working `taskq`."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from taskq import __version__
from tests.conftest import REPO

EXTRAS = {"celery", "rq", "dramatiq", "arq", "psycopg", "django", "sqlalchemy", "dashboard"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built the way `pip install ./checkout` builds it, from a copy (a build writes into its tree)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copytree(
        REPO / "recipes" / "taskq", source / "recipes" / "taskq", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("taskq_toolkit-*.whl")
    return built


def test_the_wheel_holds_the_toolkit_its_schema_and_migration_and_no_demo(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    assert "taskq/idempotency/schema.sql" in names
    assert "taskq/django/migrations/0001_idempotency.py" in names
    for adapter in ("celery", "rq", "dramatiq", "arq"):
        assert f"taskq/{adapter}/__init__.py" in names
    assert not [n for n in names if n.startswith(("demo_", "tests/"))]


def test_the_wheel_is_version_stamped_and_has_an_extra_per_library_and_adapter(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(metadata_name))
    assert metadata["Version"] == __version__
    assert set(metadata.get_all("Provides-Extra")) == EXTRAS
    requires = metadata.get_all("Requires-Dist")
    assert all("extra ==" in requirement for requirement in requires), "the core must need no package"
    assert any(r.startswith("celery[redis]") and 'extra == "celery"' in r for r in requires)


def test_installed_into_a_fresh_environment_taskq_runs(wheel: Path, tmp_path: Path):
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    pip = tmp_path / "venv" / "bin" / "pip"
    subprocess.run([str(pip), "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True)
    taskq = tmp_path / "venv" / "bin" / "taskq"
    assert (
        subprocess.run([str(taskq), "version"], capture_output=True, text=True, check=True).stdout.strip()
        == __version__
    )
    schema = subprocess.run([str(taskq), "schema"], capture_output=True, text=True, check=True).stdout
    assert "CREATE TABLE IF NOT EXISTS taskq_idempotency" in schema
