"""What the demo's jobs do instead of real work."""

from __future__ import annotations

import time

from taskq.retry import Transient


class DemoFailureError(Transient):
    """The failure a demo job is asked for (fail_times): transient, so it is retried."""


def fail_if_asked(attempt: int, fail_times: int, key: str) -> None:
    if attempt <= fail_times:
        raise DemoFailureError(f"attempt {attempt} of {key!r} fails on purpose ({fail_times=})")


def interruptible_sleep(seconds: float) -> None:
    """Sleep in short steps. A time limit that raises in the job's thread (Dramatiq's) is delivered
    only between bytecodes: it cannot stop one long C call (a single time.sleep, a blocking socket
    read without a timeout). Real work should use timeouts on its I/O for the same reason."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))
