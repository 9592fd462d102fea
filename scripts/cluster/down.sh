#!/usr/bin/env bash
# Takes the test cluster down and removes everything up.sh made: processes, containers, network
# namespaces, mounts, bridges, iptables rules and chains, kernel settings, $STATE. Only the
# build caches stay. Idempotent, and safe after a half-finished up or a crashed run.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

# stop PID...: SIGTERM to each (never to a process group), SIGKILL to any alive after 15 s.
stop() {
  [ "$#" -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  local alive=()
  for _ in $(seq 1 150); do
    alive=()
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    [ "${#alive[@]}" -eq 0 ] && return 0
    sleep 0.1
  done
  kill -KILL "${alive[@]}" 2>/dev/null || true
}

# Our daemons but containerd: by their pid files, and any process running one of our binaries
# (a pid file lost with an earlier state).
pids=()
for file in "$STATE"/run/*.pid; do
  [ -f "$file" ] && [ "$(basename "$file")" != containerd.pid ] && pids+=("$(cat "$file")")
done
for proc in /proc/[0-9]*; do
  case "$(readlink "$proc/exe" 2>/dev/null)" in "$CACHE"/bin-*) pids+=("${proc#/proc/}") ;; esac
done
stop "${pids[@]}"

# The pods' containers, while our containerd still answers; then containerd and its shims.
if [ -S "$CONTAINERD_SOCKET" ] && ctr_k8s version >/dev/null 2>&1; then
  for task in $(ctr_k8s tasks ls -q 2>/dev/null); do
    ctr_k8s tasks kill --signal SIGKILL "$task" >/dev/null 2>&1 || true
  done
  sleep 1
  for task in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete --force "$task" >/dev/null 2>&1 || true; done
  for container in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$container" >/dev/null 2>&1 || true; done
fi
pids=()
[ -f "$STATE/run/containerd.pid" ] && pids+=("$(cat "$STATE/run/containerd.pid")")
for proc in /proc/[0-9]*; do
  if { tr '\0' ' ' <"$proc/cmdline"; } 2>/dev/null | grep -qF -- "$CONTAINERD_SOCKET"; then pids+=("${proc#/proc/}"); fi
done
stop "${pids[@]}"

# The pods' network namespaces (CRI names them cni-*; Docker keeps its own elsewhere), then every
# mount under $STATE (volumes, root filesystems), deepest first.
for netns in /var/run/netns/cni-*; do
  [ -e "$netns" ] && { ip netns delete "$(basename "$netns")" 2>/dev/null || umount "$netns" 2>/dev/null; rm -f "$netns"; }
done
awk -v prefix="$STATE/" 'index($2, prefix) == 1 {print $2}' /proc/mounts | sort -r |
  while read -r mount; do umount -l "$mount" 2>/dev/null || true; done

# iptables: every rule we added carries our comment; kube-proxy's and kube-router's chains start
# KUBE-, the CNI plugins' CNI-. Jumps to those chains go first, then the chains.
for table in filter nat mangle; do
  rules="$(iptables-save -t "$table" 2>/dev/null | grep -E -- "--comment $RULE_TAG|-j (KUBE|CNI)-" | grep '^-A' || true)"
  while read -r rule; do
    [ -n "$rule" ] && eval "iptables -t $table ${rule/#-A /-D }" 2>/dev/null
  done <<<"$rules"
  for chain in $(iptables-save -t "$table" 2>/dev/null | awk -F'[: ]' '/^:(KUBE|CNI)-/ {print $2}'); do
    iptables -t "$table" -F "$chain" 2>/dev/null || true
  done
  for chain in $(iptables-save -t "$table" 2>/dev/null | awk -F'[: ]' '/^:(KUBE|CNI)-/ {print $2}'); do
    iptables -t "$table" -X "$chain" 2>/dev/null || true
  done
done

# kube-router's address sets, now that no rule refers to them.
for set in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router)' || true); do
  ipset destroy "$set" 2>/dev/null || true
done

for link in "$POD_BRIDGE" "$NODE_BRIDGE"; do
  ip link show "$link" >/dev/null 2>&1 && ip link del "$link"
done
if [ -f "$STATE/sysctls.orig" ]; then
  paste -d= <(printf '%s\n' vm.overcommit_memory kernel.panic kernel.panic_on_oops) "$STATE/sysctls.orig" |
    while read -r setting; do sysctl -q -w "$setting"; done
fi
rm -rf "$STATE"
log "down"
