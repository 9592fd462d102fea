"""The RQ demo: a Flask app with SQLAlchemy, its jobs registered with the toolkit's `Jobs`."""
