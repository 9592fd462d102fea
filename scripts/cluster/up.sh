#!/usr/bin/env bash
# Starts the single-node test cluster as host processes (no systemd here), in the order
# Kubernetes' own local-up-cluster.sh uses: etcd, the API server, the controller manager and
# scheduler, containerd, the kubelet and kube-proxy, then kube-router's NetworkPolicy firewall,
# then CoreDNS in the cluster. Idempotent: a healthy cluster is left as it is; anything else is
# taken down and started afresh. Prints the kubeconfig's path. `down.sh` undoes all of it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root: the cluster adds a bridge and iptables rules, and runs a kubelet"
for tool in containerd runc ctr openssl curl ip iptables ipset docker /usr/lib/cni/bridge; do
  command -v "$tool" >/dev/null ||
    die "$tool is missing: scripts/host-setup.sh installs it (Debian: containerd runc containernetworking-plugins openssl curl iproute2 iptables ipset docker.io)"
done
started=$SECONDS
bin="$("$CLUSTER_DIR/build.sh")"

api_ready() {
  [ -f "$STATE/pki/admin.crt" ] &&
    curl -fsS --max-time 2 --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" \
      --key "$STATE/pki/admin.key" "https://$NODE_IP:$API_PORT/readyz" >/dev/null 2>&1
}
kubectl() { "$bin/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
# Ready, and running the binaries of this source (a changed source restarts the cluster).
node_ready() {
  [ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
# kube-router has synced once: FORWARD jumps to its chain.
firewall_ready() { [[ "$(iptables -S FORWARD 2>/dev/null)" == *"-j KUBE-ROUTER-FORWARD"* ]]; }
cluster_ready() {
  [ "$(cat "$STATE/bin" 2>/dev/null)" = "$bin" ] && api_ready && node_ready && firewall_ready &&
    [ "$(kubectl -n kube-system get deploy coredns -o 'jsonpath={.status.readyReplicas}' 2>/dev/null)" = 1 ]
}
if cluster_ready; then
  log "already up"
  printf '%s\n' "$KUBECONFIG_PATH"
  exit 0
fi
"$CLUSTER_DIR/down.sh"
mkdir -p "$STATE/logs" "$STATE/run"
printf '%s\n' "$bin" >"$STATE/bin"

# The node's address lives on a bridge of ours, so that the API server is reachable from the
# host and from pods, and from nothing outside this machine.
ip link add "$NODE_BRIDGE" type bridge
ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
ip link set "$NODE_BRIDGE" up
# The cluster's ranges never leave through the host's own interfaces: a packet to an address no
# rule has rewritten yet (a Service before kube-proxy programs it), or from a pod to anywhere
# beyond this machine, is dropped. In POSTROUTING, where the interface is the one it really
# leaves by (the filter table's OUTPUT still sees the route from before kube-proxy's DNAT).
for dev in $(ip -o route show default | awk '{print $5}' | sort -u); do
  for net in "$SERVICE_NET" "$POD_NET" "$NODE_NET"; do
    iptables -t mangle -I POSTROUTING -o "$dev" -d "$net" -m comment --comment "$RULE_TAG" -j DROP
  done
  iptables -t mangle -I POSTROUTING -o "$dev" -s "$POD_NET" -m comment --comment "$RULE_TAG" -j DROP
done
# Docker sets FORWARD's policy to DROP: traffic between pods (bridged, and seen by iptables
# through br_netfilter) is let through.
iptables -A FORWARD -i "$POD_BRIDGE" -m comment --comment "$RULE_TAG" -j ACCEPT
iptables -A FORWARD -o "$POD_BRIDGE" -m comment --comment "$RULE_TAG" -j ACCEPT

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
  --kubelet-preferred-address-types InternalIP \
  --enable-aggregator-routing=true --profiling=false

# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds, failing early with the log of a
# daemon that exited.
wait_for() {
  local what="$1" seconds="$2"
  shift 2
  for _ in $(seq 1 "$seconds"); do
    "$@" && return 0
    for file in "$STATE"/run/*.pid; do
      kill -0 "$(cat "$file")" 2>/dev/null && continue
      local name
      name="$(basename "$file" .pid)"
      tail -n 30 "$STATE/logs/$name.log" >&2
      die "$name exited while waiting for $what (log: $STATE/logs/$name.log)"
    done
    sleep 1
  done
  die "$what: not within $seconds s (logs: $STATE/logs/)"
}
wait_for "the API server" 120 api_ready
ln -sf "$bin/kubectl" "$STATE/kubectl"
log "API server ready after $((SECONDS - started)) s"

start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --profiling=false \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --use-service-account-credentials \
  --allocate-node-cidrs --cluster-cidr "$POD_NET" --node-cidr-mask-size 24 \
  --service-cluster-ip-range "$SERVICE_NET"
start kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig "$STATE/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --profiling=false

# containerd of our own (Docker's keeps running beside it), everything under $STATE, pods on a
# bridge of ours through Debian's CNI plugins. Its CRI stream server listens on loopback.
mkdir -p "$STATE/containerd" "$STATE/cni/net.d"
cat >"$STATE/containerd/config.toml" <<TOML
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCKET"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  # No CAP_SYS_RESOURCE on our machines: a negative OOM score (containerd gives sandboxes -998)
  # cannot be set, and runc fails every pod with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      Root = "$STATE/containerd/runc"
TOML
# The pod network: one bridge, addresses from the node's range.
cat >"$STATE/cni/net.d/10-taskq.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "taskq-pods", "plugins": [
  {"type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NODE_POD_NET"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$STATE/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
start containerd containerd --config "$STATE/containerd/config.toml"
wait_for "containerd" 30 eval 'ctr_k8s version >/dev/null 2>&1'

# The images the cluster itself runs, from our binaries (FROM scratch: nothing is pulled).
image_from_binary() {
  local image="$1" binary="$2" user="$3" context
  context="$(mktemp -d)"
  cp "$binary" "$context/"
  printf 'FROM scratch\nCOPY %s /%s\nUSER %s\nENTRYPOINT ["/%s"]\n' \
    "$(basename "$binary")" "$(basename "$binary")" "$user" "$(basename "$binary")" >"$context/Dockerfile"
  docker build --quiet --tag "$image" "$context" >/dev/null 2>&1
  rm -rf "$context"
  "$CLUSTER_DIR/load-images.sh" "$image"
}
image_from_binary "$PAUSE_IMAGE" "$bin/pause" 65535:65535
image_from_binary "$COREDNS_IMAGE" "$bin/coredns" 65532:65532

# The kubelet sets these kernel settings to its liking; down.sh puts them back.
sysctl -n vm.overcommit_memory kernel.panic kernel.panic_on_oops >"$STATE/sysctls.orig"
mkdir -p "$STATE/kubelet"
cat >"$STATE/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
# This host has cgroup v1 only (1.35 refuses it unless told) and a containerd without the
# RuntimeConfig call, so the kubelet's own driver setting applies.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCKET
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
failSwapOn: false
# Imported images are never pulled again: nothing may collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
YAML
start kubelet "$bin/kubelet" --config "$STATE/kubelet/config.yaml" \
  --kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$STATE/kubelet" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"

cat >"$STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_NET
hostnameOverride: $NODE_NAME
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [$NODE_IP/32]
# Leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0}
YAML
start kube-proxy "$bin/kube-proxy" --config "$STATE/kube-proxy.yaml"

wait_for "node $NODE_NAME Ready" 120 node_ready
log "node Ready after $((SECONDS - started)) s"

# NetworkPolicy enforcement (iptables and ipsets, which pods' bridged traffic meets through
# br_netfilter); the rest of kube-router is off: routes, Services and the CNI are ours. No health
# port: it would listen on every interface.
start kube-router "$bin/kube-router" --kubeconfig "$KUBECONFIG_PATH" \
  --hostname-override "$NODE_NAME" --service-cluster-ip-range "$SERVICE_NET" \
  --run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false \
  --health-port 0 --metrics-port 0
wait_for "kube-router's firewall" 60 firewall_ready

sed -e "s|@DNS_IP@|$DNS_IP|g" -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" "$CLUSTER_DIR/addons/coredns.yaml" |
  kubectl apply -f - >/dev/null
kubectl apply -f "$CLUSTER_DIR/addons/storage.yaml" >/dev/null
wait_for "CoreDNS" 120 cluster_ready
log "up in $((SECONDS - started)) s (kubeconfig: $KUBECONFIG_PATH, kubectl: $STATE/kubectl)"
printf '%s\n' "$KUBECONFIG_PATH"
