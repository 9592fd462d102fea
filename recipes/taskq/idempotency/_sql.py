"""The statements behind the idempotency helper, and how their rows are read.

Written with psycopg's `%(name)s` placeholders; a store whose driver wants another style
converts them (`named_to_colon`). Every value crosses as text (the token, JSON as text, the
lease as a float of seconds) and every cast is in SQL, so that psycopg 2 and 3, Django and
asyncpg all see the same types.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

TABLE_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$")
DEFAULT_TABLE = "taskq_idempotency"


def checked_table(table: str) -> str:
    if not TABLE_PATTERN.match(table):
        raise ValueError(
            f"idempotency table must be a lower-case SQL name (schema.table allowed), got {table!r}"
        )
    return table


def schema_sql(table: str = DEFAULT_TABLE) -> str:
    """CREATE TABLE IF NOT EXISTS for the idempotency records: run it from a migration."""
    text = resources.files("taskq.idempotency").joinpath("schema.sql").read_text(encoding="utf-8")
    return text.format(table=checked_table(table))


# One round trip claims the key, or says why not. The INSERT … ON CONFLICT takes a free key, or
# retakes one whose last run failed (lease released) or died (lease expired), with the same
# arguments. When it takes nothing, the second SELECT returns the row as it stands: done, held,
# or claimed with other arguments. Row locks serialise this against a commit of the holder.
CLAIM = """
WITH claimed AS (
    INSERT INTO {table} AS t (scope, key, fingerprint, lease_token, lease_until)
    VALUES (%(scope)s, %(key)s, %(fingerprint)s, %(token)s,
            clock_timestamp() + make_interval(secs => %(lease_s)s))
    ON CONFLICT (scope, key) DO UPDATE
       SET lease_token = EXCLUDED.lease_token, lease_until = EXCLUDED.lease_until, claims = t.claims + 1
     WHERE t.state = 'running' AND t.fingerprint = EXCLUDED.fingerprint
       AND (t.lease_until IS NULL OR t.lease_until <= clock_timestamp())
    RETURNING t.state, t.fingerprint, CAST(t.result AS text), CAST(t.checkpoints AS text), t.lease_token,
              CAST(0 AS double precision)
)
SELECT * FROM claimed
UNION ALL
SELECT state, fingerprint, CAST(result AS text), CAST(checkpoints AS text), lease_token,
       CAST(extract(epoch FROM lease_until - clock_timestamp()) AS double precision)
  FROM {table}
 WHERE scope = %(scope)s AND key = %(key)s AND NOT EXISTS (SELECT 1 FROM claimed)
"""

# In the caller's transaction, with its writes: only the holder of a live lease marks the key
# done. Anyone else (the lease expired, or another run retook the key) changes no row, and the
# caller's transaction is rolled back.
MARK_DONE = """
UPDATE {table}
   SET state = 'done', result = CAST(%(result)s AS jsonb), completed_at = clock_timestamp(),
       lease_token = NULL, lease_until = NULL
 WHERE scope = %(scope)s AND key = %(key)s AND lease_token = %(token)s AND lease_until > clock_timestamp()
"""

# After a failed run: the next run (a retry) may take the key at once.
RELEASE = """
UPDATE {table} SET lease_token = NULL, lease_until = NULL
 WHERE scope = %(scope)s AND key = %(key)s AND lease_token = %(token)s
"""

CHECKPOINT = """
UPDATE {table}
   SET checkpoints = checkpoints || jsonb_build_object(CAST(%(name)s AS text), CAST(%(value)s AS jsonb))
 WHERE scope = %(scope)s AND key = %(key)s AND lease_token = %(token)s AND lease_until > clock_timestamp()
RETURNING 1
"""

DONE_KEYS = """
SELECT scope, key FROM {table}
 WHERE state = 'done'
   AND (scope, key) IN (SELECT * FROM unnest(CAST(%(scopes)s AS text[]), CAST(%(keys)s AS text[])))
"""


def statements(table: str) -> dict[str, str]:
    table = checked_table(table)
    return {
        name: sql.format(table=table)
        for name, sql in {
            "claim": CLAIM,
            "mark_done": MARK_DONE,
            "release": RELEASE,
            "checkpoint": CHECKPOINT,
            "done_keys": DONE_KEYS,
        }.items()
    }


PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def named_to_colon(sql: str) -> str:
    """%(name)s → :name, for SQLAlchemy's text()."""
    return PLACEHOLDER.sub(r":\1", sql)


def to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class Row:
    """The key's record after a claim: ours (held is True), or someone else's as it stands."""

    state: str
    fingerprint: str
    result: Any
    checkpoints: dict[str, Any]
    held: bool
    lease_left_s: float | None

    @classmethod
    def read(cls, raw: tuple, token: str) -> Row:
        state, fingerprint, result, checkpoints, lease_token, lease_left_s = raw
        return cls(
            state=state,
            fingerprint=fingerprint,
            result=from_json(result),
            checkpoints=from_json(checkpoints) or {},
            held=lease_token == token,
            lease_left_s=None if lease_left_s is None else float(lease_left_s),
        )
