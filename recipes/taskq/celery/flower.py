"""Flower with its Prometheus endpoint behind the same credentials as its pages.

    python -m taskq.celery.flower --app=proj flower --basic-auth=user:password ...

Takes `celery`'s own arguments. Flower serves `/metrics` to anyone, by design (mher/flower #1129):
with basic auth on, its pages ask for credentials and `/metrics` still lists every task's name and
every worker's host to whoever reaches the port. Here `/metrics` asks for them too (Prometheus
scrapes it with `basic_auth`); `/healthcheck` stays open for the container's health check. The
toolkit's own exporter (`taskq exporter`) serves the queue metrics without Flower.
"""

from __future__ import annotations

import sys

__all__ = ["main", "protect_metrics"]


def protect_metrics() -> None:
    """Make Flower's /metrics handler demand what its pages demand (a no-op without auth)."""
    from flower.views import monitor
    from tornado.web import HTTPError

    if getattr(monitor.Metrics, "_taskq_protected", False):
        return
    serve_metrics = monitor.Metrics.get

    async def get(self):
        # Flower's get_current_user raises 401 for missing or wrong basic-auth credentials, and
        # returns None for a missing OAuth session.
        if not self.current_user:
            raise HTTPError(401)
        await serve_metrics(self)

    monitor.Metrics.get = get
    monitor.Metrics._taskq_protected = True


def main(argv: list[str] | None = None) -> None:
    from celery.bin.celery import main as celery_main

    protect_metrics()
    sys.argv = ["celery", *(sys.argv[1:] if argv is None else argv)]
    celery_main()


if __name__ == "__main__":
    main()
