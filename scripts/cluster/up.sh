#!/usr/bin/env bash
# Starts the single-node test cluster as host processes (no systemd here): etcd, then the API
# server. Idempotent: a healthy cluster is left as it is; anything else is taken down and
# started afresh. Prints the kubeconfig's path. `down.sh` undoes all of it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root: the cluster adds a bridge and iptables rules, and runs a kubelet"
started=$SECONDS
bin="$("$CLUSTER_DIR/build.sh")"

api_ready() {
  [ -f "$STATE/pki/admin.crt" ] &&
    curl -fsS --max-time 2 --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" \
      --key "$STATE/pki/admin.key" "https://$NODE_IP:$API_PORT/readyz" >/dev/null 2>&1
}
if api_ready; then
  log "already up"
  printf '%s\n' "$KUBECONFIG_PATH"
  exit 0
fi
"$CLUSTER_DIR/down.sh"
mkdir -p "$STATE/logs" "$STATE/run"

# The node's address lives on a bridge of ours, so that the API server is reachable from the
# host and (later) from pods, and from nothing outside this machine.
ip link add "$NODE_BRIDGE" type bridge
ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
ip link set "$NODE_BRIDGE" up
# The cluster's ranges never leave through the host's own interfaces: a packet to an address no
# rule has rewritten yet (a Service before kube-proxy programs it) is refused, not routed out.
for dev in $(ip -o route show default | awk '{print $5}' | sort -u); do
  for net in "$SERVICE_NET" "$POD_NET" "$NODE_NET"; do
    for chain in OUTPUT FORWARD; do
      iptables -I "$chain" -o "$dev" -d "$net" -m comment --comment "$RULE_TAG" -j REJECT
    done
  done
done

"$CLUSTER_DIR/pki.sh"
pki="$STATE/pki"

# start NAME COMMAND...: a daemon in its own session (an interrupted make does not reach it),
# its output in logs/NAME.log and its pid in run/NAME.pid.
start() {
  local name="$1"
  shift
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/run/$name.pid"
}

# fsync off: a test cluster's data is thrown away, and fsync is most of etcd's latency on a VM.
start etcd "$bin/etcd" --name taskq --data-dir "$STATE/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "taskq=http://127.0.0.1:$ETCD_PEER_PORT" \
  --listen-metrics-urls "http://127.0.0.1:2381"

start kube-apiserver "$bin/kube-apiserver" \
  --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
  --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --service-cluster-ip-range "$SERVICE_NET" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --enable-aggregator-routing=true --profiling=false

for _ in $(seq 1 120); do
  api_ready && break
  for name in etcd kube-apiserver; do
    kill -0 "$(cat "$STATE/run/$name.pid")" 2>/dev/null && continue
    tail -n 30 "$STATE/logs/$name.log" >&2
    die "$name exited while starting (log: $STATE/logs/$name.log)"
  done
  sleep 1
done
api_ready || die "the API server did not become ready within 120 s (log: $STATE/logs/kube-apiserver.log)"
ln -sf "$bin/kubectl" "$STATE/kubectl"
log "up in $((SECONDS - started)) s (kubeconfig: $KUBECONFIG_PATH, kubectl: $STATE/kubectl)"
printf '%s\n' "$KUBECONFIG_PATH"
