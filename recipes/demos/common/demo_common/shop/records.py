"""What the demo's jobs write, with the ORM."""

from __future__ import annotations

from django.db import connection

from demo_common.shop.models import Attempt, Digest, Effect, Order


def record_attempt(key: str, job_id: str) -> int:
    """Record that an execution started; return its number for this key, from 1."""
    Attempt.objects.create(key=key, job_id=job_id)
    return Attempt.objects.filter(key=key).count()


def record_effect(key: str, job_id: str) -> None:
    """A `demo` job's effect, once per key (INSERT … ON CONFLICT DO NOTHING)."""
    Effect.objects.bulk_create([Effect(key=key, job_id=job_id)], ignore_conflicts=True)


def record_tick(slot: int) -> None:
    # Counts every run rather than ignoring repeats, so that a slot fired twice shows up.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ticks (slot, runs, last_run_at) VALUES (%s, 1, now()) "
            "ON CONFLICT (slot) DO UPDATE SET runs = ticks.runs + 1, last_run_at = now()",
            [slot],
        )


def record_digest() -> None:
    Digest.objects.create()


def place_order(key: str, charge_id: str, amount_cents: int) -> None:
    Order.objects.create(key=key, charge_id=charge_id, amount_cents=amount_cents)
