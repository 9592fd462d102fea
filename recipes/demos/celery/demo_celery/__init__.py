"""The Celery demo: a Django project whose Celery app is configured from its settings (the way
Celery's Django guide sets one up), with the toolkit applied to it. See celery.py."""

from demo_celery.celery import app as celery_app

__all__ = ("celery_app",)
