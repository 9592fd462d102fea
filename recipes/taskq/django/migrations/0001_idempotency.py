"""The idempotency table, from the same SQL as `taskq migrate` and `taskq schema` (one source)."""

from __future__ import annotations

from django.db import migrations

from taskq.idempotency import schema_sql


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []
    operations = [
        migrations.RunSQL(schema_sql(), reverse_sql="DROP TABLE IF EXISTS taskq_idempotency"),
    ]
