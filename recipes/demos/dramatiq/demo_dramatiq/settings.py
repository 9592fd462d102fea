"""The demo's Django settings: the shop (demo_common.shop), Postgres, Dramatiq on Redis through
django_dramatiq, with the toolkit's broker."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from taskq.settings import DramatiqSettings

# The broker and database URLs the toolkit reads (REDIS_URL, DATABASE_URL, or their parts).
_urls = DramatiqSettings.from_env()
_db = urlsplit(_urls.require_database_url())

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]  # the app is published on 127.0.0.1 only
# django_dramatiq: the broker, and `rundramatiq`. taskq.django: the toolkit's idempotency table,
# by `manage.py migrate`. demo_dramatiq: its actors (tasks.py, found by django_dramatiq).
INSTALLED_APPS = ["django_dramatiq", "taskq.django", "demo_common.shop", "demo_dramatiq"]
MIDDLEWARE = ["demo_common.shop.views.refuse_large_bodies"]
ROOT_URLCONF = "demo_common.shop.urls"
WSGI_APPLICATION = "demo_dramatiq.wsgi.application"
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
# Bodies over 64 KiB are refused with 413 before they are read (the shop's middleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"handlers": [], "level": "WARNING"}}

# The shop's views enqueue with this, and check this broker for readiness.
SHOP_ENQUEUE = "demo_dramatiq.tasks.enqueue"
SHOP_BROKER_URL = _urls.require_redis_url()

DRAMATIQ_BROKER = {
    # The toolkit's RedisBroker installs its own middleware (time limit, retries, the worker
    # process's SIGTERM and heartbeat) whatever this list holds.
    "BROKER": "taskq.dramatiq.RedisBroker",
    "OPTIONS": {"url": SHOP_BROKER_URL},
    "MIDDLEWARE": [
        # Closes stale database connections around each message, as Django does around requests.
        "django_dramatiq.middleware.DbConnectionsMiddleware",
        # Dramatiq's Prometheus exporter, in the worker only (the app and the scheduler run no
        # messages); its port, 9191, is set by dramatiq_prom_host/port in the environment.
        *(["dramatiq.middleware.prometheus.Prometheus"] if os.environ.get("DEMO_WORKER_METRICS") else []),
    ],
}
