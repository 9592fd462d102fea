"""The shop's Celery app, with the toolkit's production settings applied (taskq.celery.setup)."""

from __future__ import annotations

import os

from celery import Celery

import taskq.celery

app = Celery("shop", broker=os.environ["REDIS_URL"], include=["shop.tasks"])
app.conf.beat_schedule = {
    "hourly-report": {
        "task": "shop.tasks.hourly_report",
        "schedule": int(os.environ.get("SHOP_REPORT_EVERY_S", "3600")),
        # The toolkit's beat scheduler passes the slot it fires for as this keyword.
        "options": {"taskq_slot_kwarg": "slot"},
    },
}
toolkit = taskq.celery.setup(app)
