from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The toolkit from the checkout (what an app gets from `pip install`), and the demos' modules the
# static tests read (standard library ones: the body limit, the contract's shared helpers).
sys.path[:0] = [
    str(REPO / "recipes"),
    str(REPO / "recipes" / "demos" / "common"),
    str(REPO / "recipes" / "demos" / "arq"),
]
# Every stack the toolkit ships; static tests cover them all, `--stacks` narrows integration.
ALL_STACKS = ["celery", "rq", "dramatiq", "arq"]
# The port each stack's monitor listens on inside its container.
MONITOR_PORTS = {"celery": 5555, "rq": 9181, "dramatiq": 8181, "arq": 8282}
# How precisely each library starts a retry at its due time. RQ stores due times in whole
# seconds (truncated) and its scheduler polls every second: a retry runs up to 1 s early or late.
# Dramatiq holds a retry in memory until due, then sends it through the queue: two polls late.
# Arq defers a retry to the millisecond and polls every 50 ms.
RETRY_TIMING_RESOLUTION_S = {"celery": 0.3, "rq": 1.3, "dramatiq": 0.6, "arq": 0.3}
# The most jitter each library's backoff adds to a step, as a share of it: the toolkit's policy
# draws every retry delay from [1, 1.5) × the step, whatever the library.
RETRY_JITTER = {"celery": 0.5, "rq": 0.5, "dramatiq": 0.5, "arq": 0.5}
# Libraries whose retry intervals are whole seconds: the toolkit rounds each drawn delay up, so a
# step of 1 s with its jitter becomes 2 s (the most is the ceiling of the step with full jitter).
RETRY_WHOLE_SECONDS = {"rq"}


# Timings worth reading in every run's log (stack start-up, redelivery after SIGKILL, ...),
# printed at the end of the session.
MEASUREMENTS: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if MEASUREMENTS:
        terminalreporter.section("measurements")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)


def pytest_addoption(parser):
    parser.addoption(
        "--stacks",
        default=" ".join(ALL_STACKS),
        help="space-separated stacks for the integration tests (default: all)",
    )


def pytest_generate_tests(metafunc):
    if "lib" in metafunc.fixturenames:
        if metafunc.definition.get_closest_marker("integration"):
            stacks = metafunc.config.getoption("--stacks").split()
        else:
            stacks = ALL_STACKS
        # @pytest.mark.stacks("dramatiq", ...): a feature only some stacks have.
        if only := metafunc.definition.get_closest_marker("stacks"):
            stacks = [lib for lib in stacks if lib in only.args]
        metafunc.parametrize("lib", stacks, scope="session")


def pytest_collection_modifyitems(config, items):
    """Leave out, rather than skip, a test of a feature none of the selected stacks has
    (`--stacks=rq` and a test marked stacks("dramatiq") would otherwise be a skipped test)."""
    kept, left_out = [], []
    for item in items:
        marker = item.get_closest_marker("stacks")
        callspec = getattr(item, "callspec", None)
        lib = callspec.params.get("lib") if callspec else None
        (left_out if marker and lib not in marker.args else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
