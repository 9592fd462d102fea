from __future__ import annotations

from django.apps import AppConfig


class TaskqConfig(AppConfig):
    name = "taskq.django"
    label = "taskq"
    verbose_name = "Task Queue Toolkit"
