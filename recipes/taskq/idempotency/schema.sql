-- The toolkit's idempotency records: one row per (scope, key), kept after the key is done so that
-- a redelivery, a requeue or a second enqueue of the same key skips the work. Create it with a
-- migration: `taskq migrate` (psycopg), the `taskq.django` app's migration (Django), or
-- op.execute(taskq.idempotency.schema_sql()) in an Alembic revision. Nothing creates it on import.
CREATE TABLE IF NOT EXISTS {table} (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    -- sha256 of the job's arguments: the same key with other arguments is refused
    fingerprint  text        NOT NULL,
    state        text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
    -- the run holding the key, and until when; NULL when nobody holds it
    lease_token  text,
    lease_until  timestamptz,
    result       jsonb,
    -- values recorded right after external calls, so that a later run does not call again
    checkpoints  jsonb       NOT NULL DEFAULT '{{}}',
    claims       integer     NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at timestamptz,
    PRIMARY KEY (scope, key)
);
