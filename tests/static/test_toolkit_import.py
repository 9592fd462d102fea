"""The toolkit as an app imports it: nothing at import (no job library, no environment read, no
exit), errors that name the setting, a `taskq` CLI that says what it needs."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

CORE = [
    "taskq",
    "taskq.settings",
    "taskq.retry",
    "taskq.dsn",
    "taskq.schedule",
    "taskq.heartbeat",
    "taskq.deadletters",
    "taskq.idempotency",
    "taskq.cli",
    "taskq.context",
]
LIBRARIES = [
    "celery",
    "kombu",
    "rq",
    "dramatiq",
    "arq",
    "redis",
    "psycopg",
    "psycopg2",
    "django",
    "sqlalchemy",
]


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(REPO / "recipes"), "PATH": "/usr/bin:/bin", **env},
    )


def test_the_core_imports_no_job_library_no_driver_and_reads_no_environment():
    code = (
        f"import importlib, sys\nfor m in {CORE!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in {LIBRARIES!r} if m in sys.modules))"
    )
    # Settings that would be refused, were they read.
    result = python(code, DATABASE_URL="not a url", JOB_TIME_LIMIT_S="nonsense")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_cli_without_an_app_says_how_to_name_it():
    result = python("from taskq.cli import main; raise SystemExit(main(['depth']))")
    assert result.returncode == 2
    assert "--app module:attribute, or set TASKQ_APP" in result.stderr


def test_the_cli_names_an_app_module_it_cannot_find_and_where_it_looks():
    result = python(
        "from taskq.cli import main; raise SystemExit(main(['--app', 'no_such_shop.jobs:jobs', 'depth']))"
    )
    assert result.returncode == 2
    assert "'no_such_shop'" in result.stderr and "PYTHONPATH" in result.stderr


def test_the_cli_refuses_an_object_it_does_not_know_naming_what_it_takes():
    result = python(
        "from taskq.cli import main; raise SystemExit(main(['--app', 'collections:OrderedDict', 'depth']))"
    )
    assert result.returncode == 2
    assert "Celery app" in result.stderr and "taskq.rq.Jobs" in result.stderr


def test_the_cli_prints_the_idempotency_schema_and_its_version():
    schema = python("from taskq.cli import main; raise SystemExit(main(['schema']))")
    assert "CREATE TABLE IF NOT EXISTS taskq_idempotency" in schema.stdout
    version = python("from taskq.cli import main; raise SystemExit(main(['version']))")
    assert version.stdout.strip() == python("import taskq; print(taskq.__version__)").stdout.strip() != ""
