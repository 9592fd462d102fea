#!/bin/sh
# Entrypoint with the parts of the official redis image's behaviour the stacks rely on:
# flags alone start redis-server, the server runs as the redis user, and `exec` hands it
# PID 1 so that `docker stop` reaches it directly.
set -eu

# `docker run IMAGE --appendonly yes` or `... /path/redis.conf` means redis-server.
case "${1:-}" in
  -* | *.conf) set -- redis-server "$@" ;;
esac

if [ "${1:-}" = redis-server ]; then
  # The official build compiles protected mode off: in a container, connections come from
  # other containers, never from loopback. Debian's build keeps it on, so say it here unless
  # a config file (which must come first) or the caller decides.
  case " $* " in
    *" --protected-mode "*) ;;
    *) case "${2:-}" in *.conf) ;; *) set -- "$@" --protected-mode no ;; esac ;;
  esac

  if [ "$(id -u)" = 0 ]; then
    # Started as root: hand /data to redis (a bind mount may bring root-owned files) and
    # drop privileges, as the official image does with gosu. /data rather than the working
    # directory, so that `-w /` can never turn this into a chown of the whole filesystem.
    if [ -d /data ]; then
      find /data ! -user redis -exec chown redis '{}' + 2>/dev/null || true
    fi
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi

  # Data files readable by the redis user only, unless the caller chose a umask.
  if [ "$(umask)" = 0022 ]; then
    umask 0077
  fi
fi

exec "$@"
