"""Each library's adapter, against real Redis (and Postgres): run in a virtual environment that has
that library (`make test-toolkit` makes one per library, at the demo's pins and at the lowest
versions the toolkit claims). Where the library is not installed, its module is not collected."""

from __future__ import annotations

import importlib.util

LIBRARIES = ("celery", "rq", "dramatiq", "arq")
collect_ignore = [f"test_{lib}.py" for lib in LIBRARIES if importlib.util.find_spec(lib) is None]
