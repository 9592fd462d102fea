import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []
    operations = [
        migrations.CreateModel(
            name="Attempt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.TextField(db_index=True)),
                ("job_id", models.TextField()),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"db_table": "attempts"},
        ),
        migrations.CreateModel(
            name="Digest",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("ran_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"db_table": "digests"},
        ),
        migrations.CreateModel(
            name="Effect",
            fields=[
                ("key", models.TextField(primary_key=True, serialize=False)),
                ("job_id", models.TextField()),
                ("recorded_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"db_table": "effects"},
        ),
        migrations.CreateModel(
            name="Order",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.TextField(db_index=True)),
                ("charge_id", models.TextField()),
                ("amount_cents", models.IntegerField()),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"db_table": "orders"},
        ),
        migrations.CreateModel(
            name="Tick",
            fields=[
                ("slot", models.BigIntegerField(primary_key=True, serialize=False)),
                ("runs", models.IntegerField()),
                ("last_run_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"db_table": "ticks"},
        ),
    ]
