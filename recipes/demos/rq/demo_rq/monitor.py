"""rq-dashboard as the stack's monitor: behind basic auth, on gunicorn, reading jobs as JSON.

Out of the box rq-dashboard binds 0.0.0.0 with no authentication on Flask's development server,
and reads jobs with RQ's default serializer, pickle: a planted job runs its code in the
dashboard. Its JSON setting is not enough: the job page and the workers list (which the UI
polls) still fetch with the default serializer. So in this process RQ's default serializer *is*
JSON. Here: `gunicorn demo_rq.monitor:app`, credentials required, JSON only.
"""

from __future__ import annotations

import os
import sys

from rq import serializers

serializers.DefaultSerializer.dumps = staticmethod(serializers.JSONSerializer.dumps)
serializers.DefaultSerializer.loads = staticmethod(serializers.JSONSerializer.loads)

from rq_dashboard import app as dashboard  # noqa: E402 (after the serializer is made safe)
from rq_dashboard.web import config as dashboard_config  # noqa: E402

from taskq.settings import RQSettings  # noqa: E402

user, password = os.environ.get("MONITOR_USER"), os.environ.get("MONITOR_PASSWORD")
if not user or not password:
    sys.exit("taskq: configuration error: MONITOR_USER and MONITOR_PASSWORD are required")

os.environ.update(
    RQ_DASHBOARD_REDIS_URL=RQSettings.from_env().require_redis_url(),
    RQ_DASHBOARD_USERNAME=user,
    RQ_DASHBOARD_PASSWORD=password,
    RQ_DASHBOARD_URL_PREFIX="/",
    RQ_DASHBOARD_JSON_SERIALIZER="true",
)
app = dashboard.create_app()
dashboard_config.serializer = serializers.JSONSerializer
