"""The RQ demo: an app that uses the toolkit the way an adopter does (see tasks.py)."""
