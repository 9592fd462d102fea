# Shared by build.sh, up.sh and down.sh: where the single-node test cluster keeps its caches,
# state and addresses. Sourced, never run.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="v1.35.4"   # k8s.io/kubernetes in k8s/go.mod; 1.35 is the last to run on cgroup v1 with containerd 1.6

# Survives between runs on one machine (a warm CI run builds nothing): Go's module and build
# caches and the binaries, in folders named after what they were built from.
CACHE="${TASKQ_CLUSTER_CACHE:-/var/cache/taskq-cluster}"
# What `make cluster-down` removes whole: certificates, etcd's data, logs, pid files, kubeconfigs.
STATE="${TASKQ_CLUSTER_STATE:-/var/lib/taskq-cluster}"
KUBECONFIG_PATH="$STATE/admin.kubeconfig"

# The binaries built: Kubernetes' from k8s/ (and the etcd it pins, and the pod sandbox's pause),
# the DNS add-on's from coredns/, the NetworkPolicy enforcer's from kube-router/.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl pause coredns kube-router)

# Addresses: the node's own on a bridge of ours (nothing listens on the host's network
# interface), the Service range, the pod range; none leaves the machine (guard rules in up.sh).
NODE_NAME="taskq-node"
NODE_BRIDGE="taskq-node"
NODE_IP="10.243.0.1"
NODE_NET="10.243.0.0/24"
SERVICE_NET="10.96.0.0/16"
SERVICE_API_IP="10.96.0.1"
DNS_IP="10.96.0.10"
POD_NET="10.244.0.0/16"
NODE_POD_NET="10.244.0.0/24"   # the one node's share, the first /24 the controller manager hands out
POD_BRIDGE="taskq-pods"
CONTAINERD_SOCKET="$STATE/containerd/containerd.sock"
# The sandbox image every pod starts with, built from k8s/cmd/pause: never pulled.
PAUSE_IMAGE="taskq.local/pause:1"
COREDNS_IMAGE="taskq.local/coredns:1"
API_PORT=6443
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380
RULE_TAG="taskq-cluster"   # the comment on every iptables rule we add, so that down finds them

export GOTOOLCHAIN=local GOFLAGS=-modcacherw GOMODCACHE="$CACHE/gomod" GOCACHE="$CACHE/gocache"

log() { printf '[cluster] %s\n' "$*" >&2; }
ctr_k8s() { ctr --address "$CONTAINERD_SOCKET" --namespace k8s.io "$@"; }
die() { log "error: $*"; exit 1; }

# The folder the binaries of this exact source (go.mod, go.sum, our mains, Go, ldflags) live in.
bin_dir() {
  local stamp
  stamp="$(cat "$CLUSTER_DIR/build.sh" \
    <(find "$CLUSTER_DIR/k8s" "$CLUSTER_DIR/coredns" "$CLUSTER_DIR/kube-router" -type f -print0 | sort -z | xargs -0 cat) \
    <(go version) <(printf '%s\n' "${COMPONENTS[@]}") | sha256sum | cut -c1-16)"
  printf '%s/bin-%s\n' "$CACHE" "$stamp"
}
