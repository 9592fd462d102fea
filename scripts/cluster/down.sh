#!/usr/bin/env bash
# Takes the test cluster down and removes everything up.sh made (processes, bridge, iptables
# rules, $STATE), leaving only the build caches. Idempotent.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

# Our daemons: by their pid files, and any other process running one of our binaries (a pid file
# lost with an earlier state). Each gets SIGTERM, then SIGKILL after 15 s.
pids=()
for file in "$STATE"/run/*.pid; do
  [ -f "$file" ] && pids+=("$(cat "$file")")
done
for proc in /proc/[0-9]*; do
  case "$(readlink "$proc/exe" 2>/dev/null)" in "$CACHE"/bin-*) pids+=("${proc#/proc/}") ;; esac
done
if [ "${#pids[@]}" -gt 0 ]; then
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 150); do
    alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    [ "${#alive[@]}" -eq 0 ] && break
    sleep 0.1
  done
  if [ "${#alive[@]}" -gt 0 ]; then kill -KILL "${alive[@]}" 2>/dev/null || true; fi
fi

# Every iptables rule we added carries our comment: delete each as it was added.
for table in filter nat; do
  rules="$(iptables-save -t "$table" 2>/dev/null | grep -- "--comment $RULE_TAG" || true)"
  while read -r rule; do
    [ -n "$rule" ] && eval "iptables -t $table ${rule/#-A /-D }"
  done <<<"$rules"
done
ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && ip link del "$NODE_BRIDGE"
rm -rf "$STATE"
log "down"
