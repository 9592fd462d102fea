from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Every stack the toolkit ships; static tests cover them all, `--stacks` narrows integration.
ALL_STACKS = ["celery"]


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
        metafunc.parametrize("lib", stacks, scope="session")
