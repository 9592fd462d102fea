"""The Celery app, configured from Django's settings (the CELERY_ namespace), with the toolkit's
production settings applied on top by `taskq.celery.setup` before the tasks are discovered."""

from __future__ import annotations

import os

from celery import Celery

import taskq.celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_celery.settings")

app = Celery("demo_celery")
app.config_from_object("django.conf:settings", namespace="CELERY")
toolkit = taskq.celery.setup(app)
app.autodiscover_tasks()
