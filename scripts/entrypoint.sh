#!/bin/sh
# The entrypoint of every recipe's image. It does its set-up and then replaces itself with the
# command (exec), so that the command runs as PID 1 and receives the container's SIGTERM
# itself, exactly once: a shell left in between would either swallow the signal (the worker
# is then SIGKILLed at the end of the grace period) or forward it to the whole process group
# (which kills Celery's pool children mid-job and double-signals Dramatiq).
set -eu

# Files written at run time are for this user only (the root filesystem is read-only; /tmp is
# the container's own tmpfs).
umask 0077

# A heartbeat left by an earlier run of this container must not vouch for the new process.
rm -f /tmp/*-heartbeat

if [ "$#" -eq 0 ]; then
    echo "taskq-entrypoint: no command given" >&2
    exit 64
fi
exec "$@"
