#!/usr/bin/env bash
# Builds the cluster's binaries from our Go modules, k8s/ (Kubernetes, the etcd it pins, the pod
# sandbox's pause), coredns/ and kube-router/, into the cache, once per source: prints the folder. A cold build
# downloads ~0.8 GB of modules and compiles for about 10 minutes on 2 cores; a warm one returns
# at once.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "no Go toolchain: install Go 1.26 or newer (kube-router/go.mod says go 1.26.0)"
bin="$(bin_dir)"
if [ -f "$bin/.complete" ]; then
  printf '%s\n' "$bin"
  exit 0
fi
# One build at a time (CI starts one early, in the background): a second waits for the first,
# then finds its binaries.
mkdir -p "$CACHE"
exec 9>"$CACHE/build.lock"
flock 9
if [ -f "$bin/.complete" ]; then
  printf '%s\n' "$bin"
  exit 0
fi

# What `kubectl version` and Helm's kubeVersion check read: without these, v0.0.0-master.
pkg=k8s.io/component-base/version cg=k8s.io/client-go/pkg/version
minor="${K8S_VERSION#v1.}" minor="${minor%%.*}"
ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor
  -X $pkg.gitTreeState=clean -X $pkg.gitCommit=0000000000000000000000000000000000000000
  -X $pkg.buildDate=2026-01-01T00:00:00Z
  -X $cg.gitVersion=$K8S_VERSION -X $cg.gitMajor=1 -X $cg.gitMinor=$minor"

packages=()
for component in "${COMPONENTS[@]}"; do
  case "$component" in
    etcd | pause) packages+=("./cmd/$component") ;;
    coredns | kube-router) ;;
    *) packages+=("k8s.io/kubernetes/cmd/$component") ;;
  esac
done

mkdir -p "$CACHE"
rm -rf "$bin.partial"
log "building ${COMPONENTS[*]} ($K8S_VERSION) into $bin (cold: about 10 minutes)"
started=$SECONDS
cd "$CLUSTER_DIR/k8s"
# Static binaries, as upstream builds the control plane; the tags are upstream's release tags.
CGO_ENABLED=0 go build -mod=readonly -trimpath -tags selinux,notest -ldflags "$ldflags" \
  -o "$bin.partial/" "${packages[@]}"
cd "$CLUSTER_DIR/coredns"
CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$bin.partial/coredns" .
cd "$CLUSTER_DIR/kube-router"
CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$bin.partial/kube-router" \
  github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
touch "$bin.partial/.complete"
mv "$bin.partial" "$bin"
# Binaries of an older source are never used again (~0.3 GB each).
find "$CACHE" -maxdepth 1 -name 'bin-*' ! -path "$bin" -exec rm -rf {} +
log "built in $((SECONDS - started)) s"
printf '%s\n' "$bin"
