"""The demo's broker: the toolkit's RedisBroker (Dramatiq's, with the toolkit's middleware and
settings), made Dramatiq's global broker before any actor is declared."""

from __future__ import annotations

import os

import dramatiq

from taskq.dramatiq import RedisBroker
from taskq.dramatiq.middleware import PutBackWhenStopping

broker = RedisBroker()
if os.environ.get("DEMO_WORKER_METRICS"):
    # Dramatiq's Prometheus exporter, in the worker only (the app and scheduler process no
    # messages); before the toolkit's stop guard, whose skip undoes its in-progress gauge.
    from dramatiq.middleware.prometheus import Prometheus

    broker.add_middleware(Prometheus(), before=PutBackWhenStopping)
dramatiq.set_broker(broker)
