#!/usr/bin/env bash
# The toolkit's adapter tests, once per library in a virtual environment of its own (the libraries
# cannot share one: Arq needs redis-py < 6, Celery's kombu needs >= 6.4), twice each: with the
# demo image's pins, and with the lowest versions pyproject.toml claims; then the idempotency
# stores' tests with the lowest psycopg, Django and SQLAlchemy claimed (the main test environment
# runs them at current versions). The environments live in .venvs/ and are rebuilt only when
# their requirements change.
#   scripts/toolkit-tests.sh [LIB ...]     (default: celery rq dramatiq arq)
set -euo pipefail
cd "$(dirname "$0")/.."

libs=("$@")
[ "${#libs[@]}" -gt 0 ] || libs=(celery rq dramatiq arq)
adapters=tests/toolkit/adapters

venv() {  # venv NAME REQUIREMENTS...: a virtual environment with these installed, cached by their hash
  local name="$1"; shift
  local dir=".venvs/$name" stamp
  stamp="$(cat "$@" | sha256sum | cut -c1-16)"
  if [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$dir"
    python3 -m venv "$dir"
    local args=()
    for file in "$@"; do args+=(-r "$file"); done
    "$dir/bin/pip" install --quiet --disable-pip-version-check "${args[@]}" >&2
    echo "$stamp" > "$dir/.stamp"
  fi
  printf '%s\n' "$dir"
}

status=0
for lib in "${libs[@]}"; do
  for variant in pinned lowest; do
    start=$(date +%s)
    if [ "$variant" = pinned ]; then
      dir="$(venv "$lib-pinned" "recipes/demos/$lib/requirements.txt" "$adapters/requirements.txt")"
    else
      dir="$(venv "$lib-lowest" "$adapters/lowest-$lib.txt" "$adapters/requirements.txt")"
    fi
    version="$("$dir/bin/python" -c "import importlib.metadata as m; print(m.version('$lib'))")"
    echo "== $lib $version ($variant)"
    # Exit status 5 (nothing collected) fails too: these tests must run somewhere.
    "$dir/bin/python" -m pytest -m services -p no:cacheprovider -q "$adapters/test_$lib.py" || status=1
    echo "== $lib $variant: $(( $(date +%s) - start )) s"
  done
done
start=$(date +%s)
dir="$(venv stores-lowest tests/toolkit/lowest-stores.txt)"
echo "== idempotency stores: $("$dir/bin/python" -c "import django, sqlalchemy, psycopg; print('psycopg', psycopg.__version__, 'Django', django.__version__, 'SQLAlchemy', sqlalchemy.__version__)") (lowest)"
"$dir/bin/python" -m pytest -m services -p no:cacheprovider -q tests/toolkit/test_idempotency.py || status=1
echo "== idempotency stores lowest: $(( $(date +%s) - start )) s"
exit "$status"
