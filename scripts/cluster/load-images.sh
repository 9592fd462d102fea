#!/usr/bin/env bash
# Copies images from Docker (where `make` builds them) into the test cluster's containerd, which
# pulls nothing: a pod names them with imagePullPolicy IfNotPresent or Never.
#   load-images.sh IMAGE...
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[ "$#" -gt 0 ] || die "usage: load-images.sh IMAGE..."
ctr_k8s version >/dev/null 2>&1 || die "the test cluster is not up: make cluster-up"
for image in "$@"; do
  docker image inspect "$image" >/dev/null 2>&1 || die "no image $image in Docker: build it first (make build LIB=…, or scripts/images.sh for the base images)"
  started=$SECONDS
  docker save "$image" | ctr_k8s images import - >/dev/null
  log "loaded $image in $((SECONDS - started)) s"
done
