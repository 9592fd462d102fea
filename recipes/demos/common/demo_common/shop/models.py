"""The demo's tables (named as the stack contract's tests read them)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Attempt(models.Model):
    """Every execution of a job that started, across retries and redeliveries."""

    key = models.TextField(db_index=True)
    job_id = models.TextField()
    started_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "attempts"


class Effect(models.Model):
    """A `demo` job's effect, written idempotently: one row per key, whatever runs twice."""

    key = models.TextField(primary_key=True)
    job_id = models.TextField()
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "effects"


class Tick(models.Model):
    """Scheduler slots that ran, and how many times each did (more than once would be a bug)."""

    slot = models.BigIntegerField(primary_key=True)
    runs = models.IntegerField()
    last_run_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ticks"


class Order(models.Model):
    """What a `charge` leaves; no unique key on purpose: an effect that happened twice shows."""

    key = models.TextField(db_index=True)
    charge_id = models.TextField()
    amount_cents = models.IntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "orders"


class Digest(models.Model):
    """A run of the once-a-minute periodic task."""

    ran_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "digests"
