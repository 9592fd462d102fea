"""The actors and the schedule, for the processes that are not Django's own: the scheduler
(`python -m taskq.dramatiq scheduler demo_dramatiq.jobs:schedule`) and the `taskq` CLI and
dashboard (TASKQ_APP=demo_dramatiq.jobs:broker). Sets Django up first, as a script must."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_dramatiq.settings")
django.setup()

import dramatiq  # noqa: E402 (after django.setup: the broker is made from Django's settings)
from django.conf import settings  # noqa: E402

from demo_dramatiq.tasks import digest, tick  # noqa: E402
from taskq.schedule import Entry, Every  # noqa: E402

broker = dramatiq.get_broker()
schedule = [
    Entry("tick", Every(int(os.environ.get("TICK_INTERVAL_S", "60"))), tick, slot_kwarg="slot"),
    Entry("digest", "* * * * *", digest),
]
__all__ = ["broker", "schedule", "settings"]
