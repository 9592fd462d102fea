#!/usr/bin/env bash
# Entrypoint of the postgres stand-in: a small reimplementation of what the stacks rely on in
# the official image's entrypoint, not a copy of it.
#
# On first start (PGDATA without PG_VERSION) it creates the cluster from POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB (each also as *_FILE), POSTGRES_HOST_AUTH_METHOD and
# POSTGRES_INITDB_ARGS, runs /docker-entrypoint-initdb.d/*.sql, *.sql.gz and *.sh, and then
# execs the server. Started as root it drops to the postgres user; started as 999:999 (as
# the stacks do, with a read-only root filesystem) it needs only PGDATA and
# /var/run/postgresql to be writable.
set -Eeuo pipefail

SOCKET_DIR=/var/run/postgresql
# The temporary server used during initialisation listens on a socket with this port
# number and on no TCP port: a healthcheck running `pg_isready` (port 5432) therefore stays
# red until the real server is up, and no client can reach a half-initialised database.
INIT_PORT=54329

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# VAR or VAR_FILE (Docker/Compose secrets), never both, then VAR is exported.
file_env() {
  local var="$1" default="${2:-}" file_var="${1}_FILE" value
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    die "both $var and $file_var are set; set only one"
  fi
  value="$default"
  if [ -n "${!var:-}" ]; then
    value="${!var}"
  elif [ -n "${!file_var:-}" ]; then
    value="$(<"${!file_var}")"
  fi
  export "$var=$value"
  unset "$file_var"
}

# `postgres --version` and friends only print something: no cluster needed for those.
only_prints() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      -V | --version | --help | -'?' | --describe-config | -C | --describe-config=*) return 0 ;;
    esac
  done
  return 1
}

become_postgres() {
  # The directories a root start may find root-owned (fresh bind mounts, tmpfs mounts).
  mkdir -p "$PGDATA" "$SOCKET_DIR"
  chown postgres:postgres "$PGDATA" "$SOCKET_DIR"
  # Best effort from here: on an unusual mount these may fail, and the server then reports
  # the actual problem more precisely than a failed chmod would.
  chmod 0700 "$PGDATA" || true
  chmod 3777 "$SOCKET_DIR" || true
  # Files left by a previous run under another uid would stop the server from reading them.
  find "$PGDATA" ! -user postgres -exec chown postgres:postgres '{}' + || true
  export HOME=/var/lib/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
}

check_runtime_dirs() {
  getent passwd "$(id -u)" >/dev/null \
    || die "uid $(id -u) has no passwd entry; run as root or as 999:999 (the postgres user)"
  # PGDATA may be a folder inside the volume (Kubernetes charts point it below the mount, whose
  # root holds lost+found on many volume types): created here, as the official image does.
  if mkdir -p "$PGDATA" 2>/dev/null; then chmod 0700 "$PGDATA" 2>/dev/null || true; fi
  [ -w "$PGDATA" ] \
    || die "$PGDATA is not writable by uid $(id -u); its volume must belong to 999:999"
  if [ ! -w "$SOCKET_DIR" ]; then
    # Not fatal: unix_socket_directories may have been pointed elsewhere.
    log "warning: $SOCKET_DIR is not writable by uid $(id -u); a tmpfs there needs" \
      "uid=999,gid=999 (or mode=1777) in its mount options"
  fi
}

psql_init() {
  psql --no-psqlrc --no-password --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" "$@"
}

init_cluster() {
  local auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" extra=()
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
    die "the database is not initialised and POSTGRES_PASSWORD is empty. Set" \
      "POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to the superuser's password, or set" \
      "POSTGRES_HOST_AUTH_METHOD=trust to accept every connection without a password."
  fi

  log "initialising a cluster in $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
  read -r -a extra <<<"${POSTGRES_INITDB_ARGS:-}"
  # Inside the container (socket and loopback) connections are trusted, as in the official
  # image; everything from the network goes through the line appended below.
  local args=(--pgdata="$PGDATA" --username="$POSTGRES_USER" --auth-local=trust --auth-host=trust)
  if [ -n "$POSTGRES_PASSWORD" ]; then
    # A process substitution keeps the password off the command line and off the disk.
    initdb "${args[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") "${extra[@]}"
  else
    initdb "${args[@]}" "${extra[@]}"
  fi
  printf '\n# Added by docker-entrypoint.sh: connections from the network.\nhost all all all %s\n' \
    "$auth" >>"$PGDATA/pg_hba.conf"

  # PGPORT and friends are for the init scripts, not for the real server: unset below.
  # Not scoped with a ( subshell ): in one, bookworm's bash 5.2.15 execs the last command
  # of a sourced `a; b` line, which silently ended the init loop after such a script.
  export PGHOST="$SOCKET_DIR" PGPORT="$INIT_PORT" PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB"
  pg_ctl --pgdata="$PGDATA" --wait --silent \
    --options="-c listen_addresses='' -c unix_socket_directories=$SOCKET_DIR -p $INIT_PORT" start
  if [ "$POSTGRES_DB" != postgres ]; then
    # :"db" makes psql quote the name as an identifier, whatever characters it holds.
    psql_init --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        log "running $f"
        # Executable scripts run on their own; others are sourced, as in the official image.
        if [ -x "$f" ]; then "$f"; else
          # shellcheck disable=SC1090  # user-supplied at run time
          . "$f"
        fi
        ;;
      *.sql) log "running $f"; psql_init --dbname "$POSTGRES_DB" --file "$f" ;;
      *.sql.gz) log "running $f"; gzip -dc "$f" | psql_init --dbname "$POSTGRES_DB" ;;
      *) log "ignoring $f" ;;
    esac
  done
  pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
  unset PGHOST PGPORT PGUSER PGDATABASE
  log "initialisation complete"
}

main() {
  # `docker run IMAGE -c max_connections=200` means postgres with those flags.
  case "${1:-}" in
    -*) set -- postgres "$@" ;;
  esac

  if [ "${1:-}" = postgres ] && ! only_prints "$@"; then
    if [ "$(id -u)" = 0 ]; then
      become_postgres "$@"
    fi
    check_runtime_dirs
    if [ -s "$PGDATA/PG_VERSION" ]; then
      log "$PGDATA already holds a cluster; skipping initialisation"
    else
      file_env POSTGRES_PASSWORD
      file_env POSTGRES_USER postgres
      file_env POSTGRES_DB "$POSTGRES_USER"
      init_cluster
    fi
  fi

  exec "$@"
}

main "$@"
