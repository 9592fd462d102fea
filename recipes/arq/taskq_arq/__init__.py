"""Arq on Redis, set up to the Task Queue Toolkit contract (see the recipe README)."""
