"""The Dramatiq demo: a Django project with django_dramatiq, whose broker is the toolkit's
(settings.DRAMATIQ_BROKER). Its actors are in tasks.py."""
