"""What the four demo apps share: the HTTP contract's API (FastAPI), its Postgres tables, the
stand-in payment provider and its client. Not part of the toolkit: an app has its own of each."""
