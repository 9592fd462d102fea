"""Django integration: add "taskq.django" to INSTALLED_APPS, and `manage.py migrate` creates the
idempotency table (`taskq_idempotency`). The store itself is `taskq.idempotency.django.DjangoStore`."""
