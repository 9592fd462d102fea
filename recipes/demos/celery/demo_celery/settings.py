"""The demo's Django settings: the shop (demo_common.shop), Postgres, Celery on Redis."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from celery.schedules import crontab

from taskq.settings import CelerySettings

# The broker and database URLs the toolkit reads (REDIS_URL, DATABASE_URL, or their parts).
_urls = CelerySettings.from_env()
_db = urlsplit(_urls.require_database_url())

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]  # the app is published on 127.0.0.1 only
# taskq.django: the toolkit's idempotency table, by `manage.py migrate`. demo_celery: its tasks.
INSTALLED_APPS = ["taskq.django", "demo_common.shop", "demo_celery"]
MIDDLEWARE = ["demo_common.shop.views.refuse_large_bodies"]
ROOT_URLCONF = "demo_common.shop.urls"
WSGI_APPLICATION = "demo_celery.wsgi.application"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(_db.path.lstrip("/")),
        "USER": unquote(_db.username or ""),
        "PASSWORD": unquote(_db.password or ""),
        "HOST": _db.hostname,
        "PORT": _db.port or 5432,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}
# Bodies over 64 KiB are refused with 413 before they are read (shop.views.refuse_large_bodies).
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
# The shop's views enqueue with this, and check this broker for readiness.
SHOP_ENQUEUE = "demo_celery.tasks.enqueue"
SHOP_BROKER_URL = _urls.require_redis_url()
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"handlers": [], "level": "WARNING"}}

TICK_INTERVAL_S = int(os.environ.get("TICK_INTERVAL_S", "60"))

CELERY_BROKER_URL = SHOP_BROKER_URL
CELERY_TASK_DEFAULT_QUEUE = "default"
# Effects live in Postgres; nobody reads task results, so none are stored.
CELERY_TASK_IGNORE_RESULT = True
# Task events feed Flower's task views, and nothing else here (the exporter reads Redis): off,
# because on short jobs they halve a worker's throughput (546 against 234-281 jobs/s measured on
# this stack). CELERY_TASK_EVENTS=on turns them on for Flower's task pages.
TASK_EVENTS = os.environ.get("CELERY_TASK_EVENTS", "off") == "on"
CELERY_WORKER_SEND_TASK_EVENTS = TASK_EVENTS
CELERY_TASK_SEND_SENT_EVENT = TASK_EVENTS
CELERY_BEAT_SCHEDULE = {
    "tick": {
        "task": "tick",
        "schedule": TICK_INTERVAL_S,
        # The slot scheduler passes the slot it fires for; a tick that cannot start within ten
        # slots is stale: dropped rather than run late.
        "options": {"taskq_slot_kwarg": "slot", "expires": TICK_INTERVAL_S * 10},
    },
    # A periodic task as apps write them: a crontab, and no slot argument.
    "digest": {"task": "digest", "schedule": crontab(minute="*")},
}
