#!/usr/bin/env bash
# The one switch between official images and stand-ins built from Debian packages.
#
# The compose files name their images through PYTHON_IMAGE, REDIS_IMAGE, POSTGRES_IMAGE and
# PROMETHEUS_IMAGE (the `monitoring` profile's).
# On a host that reaches a registry (or already has the official images) those keep their
# official defaults; on a host that reaches only Debian's package mirror, this script builds
# stand-in images (debootstrap base + apt) and points the variables at them instead.
#
# Usage:
#   scripts/images.sh env       print PYTHON_IMAGE=..., REDIS_IMAGE=..., POSTGRES_IMAGE=...,
#                               PROMETHEUS_IMAGE=... (only those lines go to stdout; progress
#                               to stderr)
#   scripts/images.sh standins  build whichever stand-in is missing or out of date
#   scripts/images.sh rebuild   remove the stand-ins (and their base), then build them again
#   scripts/images.sh clean     remove the stand-ins and their base
#
# Environment:
#   TASKQ_IMAGES=auto|official|standin  force the choice made by `env` (default: auto)
#   PYTHON_IMAGE, REDIS_IMAGE, POSTGRES_IMAGE, PROMETHEUS_IMAGE
#                               images wanted when available (default: the official names
#                               below, the same defaults as the compose files)
#   DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR  override the mirrors read from the host's apt
#                               sources (DEBIAN_SECURITY_MIRROR= leaves security updates out)
#   TASKQ_STANDIN_LOG_DIR       where build logs go (default: $TMPDIR/taskq-standin-logs)
set -euo pipefail

# --- Image names: defined here and nowhere else. -------------------------------------------
# Read through ${!name} (see official/standin below), hence the disabled "unused" warning.
# shellcheck disable=SC2034
{
  # Wanted images: an exported PYTHON_IMAGE etc. wins, exactly as it would in compose.
  OFFICIAL_PYTHON_IMAGE="${PYTHON_IMAGE:-python:3.12-slim-bookworm}"
  OFFICIAL_REDIS_IMAGE="${REDIS_IMAGE:-redis:7.4-bookworm}"
  OFFICIAL_POSTGRES_IMAGE="${POSTGRES_IMAGE:-postgres:16-bookworm}"
  OFFICIAL_PROMETHEUS_IMAGE="${PROMETHEUS_IMAGE:-prom/prometheus:v2.53.3}"
  # Stand-ins are tagged with the version Debian bookworm ships, not the official one, so a
  # tag never claims to be what the image is not.
  STANDIN_PYTHON_IMAGE="taskq-standin/python:3.11-bookworm"
  STANDIN_REDIS_IMAGE="taskq-standin/redis:7.0-bookworm"
  STANDIN_POSTGRES_IMAGE="taskq-standin/postgres:15-bookworm"
  STANDIN_PROMETHEUS_IMAGE="taskq-standin/prometheus:2.42-bookworm"
  STANDIN_BASE_IMAGE="taskq-standin/debian:bookworm"
}
# The variables, in output order; each stand-in's build context is
# scripts/standins/<name>, with <name> the variable's prefix in lower case.
VARS=(PYTHON_IMAGE REDIS_IMAGE POSTGRES_IMAGE PROMETHEUS_IMAGE)
SUITE="bookworm"
# An edited Dockerfile must not leave a stale image in use just because an image with the
# right tag exists, so each stand-in records a hash of its build context in this label.
HASH_LABEL="org.taskq.standin.context-sha256"
# Plain variables and ${!name} rather than associative arrays: the `env` path must also
# run under macOS's bash 3.2, where a registry is usually reachable.

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STANDINS_DIR="$SCRIPT_DIR/standins"
LOG_DIR="${TASKQ_STANDIN_LOG_DIR:-${TMPDIR:-/tmp}/taskq-standin-logs}"

# Keep stdout for the `env` result alone: docker, apt and debootstrap chatter goes to
# stderr, so `eval "$(scripts/images.sh env)"` or `scripts/images.sh env > .env` is safe.
exec 3>&1 1>&2

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

official() { local v="OFFICIAL_$1"; printf '%s\n' "${!v}"; }
standin() { local v="STANDIN_$1"; printf '%s\n' "${!v}"; }
context_name() { printf '%s\n' "${1%_IMAGE}" | tr '[:upper:]' '[:lower:]'; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "'$1' needs root, and sudo is not installed"
  fi
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

require_docker() {
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
    || die "the Docker engine does not answer (scripts/host-setup.sh starts one)"
}

print_env() {
  local kind="$1" var
  for var in "${VARS[@]}"; do
    printf '%s=%s\n' "$var" "$("$kind" "$var")" >&3
  done
}

# --- Official images -----------------------------------------------------------------------
# All or nothing: a stack mixing official and stand-in images would run in a combination
# nobody tests. The first failed pull settles it; without a registry `docker pull` fails at
# once, and retrying would only slow down every `make up`.
official_available() {
  local var image out
  for var in "${VARS[@]}"; do
    image="$(official "$var")"
    image_exists "$image" && continue
    log "pulling $image"
    if ! out="$(docker pull --quiet "$image" 2>&1)"; then
      log "cannot pull $image ($(printf '%s\n' "$out" | tail -n 1)): using the stand-in images"
      return 1
    fi
  done
}

# --- Debian mirror -------------------------------------------------------------------------
# Taken from the host's apt sources: that mirror (or proxy) is the one known to be reachable
# from here. Debian 12 hosts use both the one-line (.list) and the deb822 (.sources) format.
host_apt_uri() {
  local suite="$1" f files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ "${#files[@]}" -gt 0 ] || return 0
  # Written for mawk (Debian's default awk): no ENDFILE, so a stanza is flushed on a blank
  # line, at the first line of the next file, and at the end.
  awk -v suite="$suite" '
    function flush() { if (deb && hit && uri != "" && out == "") out = uri; deb = 0; hit = 0; uri = "" }
    FNR == 1 { flush() }
    FILENAME ~ /\.sources$/ {
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($1 == "Types:") { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      if ($1 == "URIs:") uri = $2
      if ($1 == "Suites:") { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
      if ($1 == "Enabled:" && $2 == "no") deb = 0
      next
    }
    $1 == "deb" && out == "" {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($(i + 1) == suite) out = $i
    }
    END { flush(); if (out != "") print out }
  ' "${files[@]}"
}

# The base has no CA certificates, so an https mirror would fail inside it; Debian mirrors
# serve the same tree over http, and apt verifies the signatures either way.
to_http() { printf '%s\n' "${1/#https:\/\//http://}"; }

resolve_mirrors() {
  if [ -z "${DEBIAN_MIRROR:-}" ]; then
    DEBIAN_MIRROR="$(host_apt_uri "$SUITE")"
    [ -n "$DEBIAN_MIRROR" ] \
      || die "the host's apt sources have no '$SUITE' entry: set DEBIAN_MIRROR=http://.../debian"
  fi
  if [ -z "${DEBIAN_SECURITY_MIRROR+set}" ]; then
    DEBIAN_SECURITY_MIRROR="$(host_apt_uri "$SUITE-security")"
  fi
  DEBIAN_MIRROR="$(to_http "$DEBIAN_MIRROR")"
  DEBIAN_SECURITY_MIRROR="$(to_http "$DEBIAN_SECURITY_MIRROR")"
}

# --- Building ------------------------------------------------------------------------------
# Full apt and debootstrap output would bury `make up`: it goes to a log file, and only its
# end is shown, when something failed.
run_logged() {
  local name="$1" file
  shift
  mkdir -p "$LOG_DIR"
  file="$LOG_DIR/$name.log"
  if ! "$@" >"$file" 2>&1; then
    log "$name failed; last lines of $file:"
    tail -n 40 "$file" >&2
    return 1
  fi
}

ROOTFS=""
cleanup_rootfs() {
  [ -n "$ROOTFS" ] && [ -d "$ROOTFS" ] || return 0
  # debootstrap mounts proc and sys inside the target; an interrupted run can leave them
  # mounted, and rm -rf must never walk into the host's /proc or /sys.
  local mnt
  findmnt -rn -o TARGET | awk -v root="$ROOTFS/" 'index($0, root) == 1' | sort -r |
    while read -r mnt; do as_root umount -l "$mnt" || true; done
  as_root rm -rf --one-file-system "$ROOTFS"
  ROOTFS=""
}

# Runs as root inside the debootstrapped tree's parent (via `bash -c`, see build_base).
write_base_config() {
  local root="$1"
  # The host's mirror, plus updates and security, so packages installed on top carry the
  # fixes Debian has published (the official images are rebuilt for those).
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' \
      "$DEBIAN_MIRROR" "$SUITE" "$SUITE"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [ -n "$DEBIAN_SECURITY_MIRROR" ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' \
        "$DEBIAN_SECURITY_MIRROR" "$SUITE"
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$root/etc/apt/sources.list.d/debian.sources"
  rm -f "$root/etc/apt/sources.list"

  # Maintainer scripts (redis-server, postgresql) try to start their daemons during
  # `docker build`; 101 means "action forbidden", as in Debian's own Docker images.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"

  # The size measures of Debian's slim images: apt leaves no caches behind, fetches no
  # translations, and dpkg skips documentation and message catalogues (copyright files
  # stay, for the licences). Message catalogues alone are ~50 MB of PostgreSQL's image.
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  printf 'Acquire::GzipIndexes "true";\n' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF

  # The host's identity must not end up in the image; Docker supplies these at run time.
  : >"$root/etc/resolv.conf"
  : >"$root/etc/hostname"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/var/log/apt/* \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/tmp/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian/*
  # What debootstrap installed before the dpkg filter above existed, filtered the same way.
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf '{}' +
}

build_base() {
  command -v debootstrap >/dev/null 2>&1 \
    || die "debootstrap is not installed (scripts/host-setup.sh installs it)"
  resolve_mirrors
  local start=$SECONDS
  log "building $STANDIN_BASE_IMAGE: debootstrap $SUITE from $DEBIAN_MIRROR (about a minute)"
  # /var/tmp: on disk (the tree is ~150 MB) and, unlike many /tmp mounts, allows the
  # device nodes debootstrap creates.
  ROOTFS="$(mktemp -d "${TMPDIR:-/var/tmp}/taskq-rootfs.XXXXXX")"
  trap cleanup_rootfs EXIT
  run_logged debootstrap as_root debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$DEBIAN_MIRROR"
  as_root env SUITE="$SUITE" DEBIAN_MIRROR="$DEBIAN_MIRROR" \
    DEBIAN_SECURITY_MIRROR="$DEBIAN_SECURITY_MIRROR" \
    bash -c "set -euo pipefail; $(declare -f write_base_config); write_base_config \"\$1\"" _ "$ROOTFS"
  # /dev, /proc and /sys come from the runtime; debootstrap's device nodes stay out.
  as_root tar -C "$ROOTFS" --numeric-owner \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["bash"]' \
      --message "debootstrap --variant=minbase $SUITE $DEBIAN_MIRROR" \
      - "$STANDIN_BASE_IMAGE" >/dev/null
  cleanup_rootfs
  trap - EXIT
  log "built $STANDIN_BASE_IMAGE in $((SECONDS - start)) s"
}

context_hash() {
  # Names and contents in a locale-independent order: the same tree hashes the same on
  # every host, and a renamed or chmod-ed file changes it too.
  (
    cd "$STANDINS_DIR/$1"
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    find . -type f -perm -u+x | LC_ALL=C sort
  ) | sha256sum | cut -d' ' -f1
}

standin_current() {
  local var="$1" want have
  want="$(context_hash "$(context_name "$var")")"
  have="$(docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" \
    "$(standin "$var")" 2>/dev/null)" || return 1
  [ "$have" = "$want" ]
}

build_standin() {
  local var="$1" image name dir start
  image="$(standin "$var")"
  name="$(context_name "$var")"
  dir="$STANDINS_DIR/$name"
  [ -f "$dir/Dockerfile" ] || die "missing $dir/Dockerfile"
  image_exists "$STANDIN_BASE_IMAGE" || build_base
  start=$SECONDS
  log "building $image (log: $LOG_DIR/$name.log)"
  run_logged "$name" docker build \
    --build-arg "BASE_IMAGE=$STANDIN_BASE_IMAGE" \
    --label "$HASH_LABEL=$(context_hash "$name")" \
    --tag "$image" "$dir"
  log "built $image in $((SECONDS - start)) s"
}

# Parallel `make up`s (concurrent test runs) must not build the same image twice.
with_lock() {
  if ! command -v flock >/dev/null 2>&1; then "$@"; return; fi
  local lock="${TMPDIR:-/tmp}/taskq-standin-build.lock"
  exec 9>>"$lock"
  if ! flock -n 9; then
    log "another build of the stand-ins is running; waiting for it"
    flock 9
  fi
  "$@"
  exec 9>&-
}

build_missing() {
  local var
  for var in "${VARS[@]}"; do
    standin_current "$var" || build_standin "$var"
  done
}

ensure_standins() {
  local var
  # Without the lock first: a second `make up` only inspects four images.
  for var in "${VARS[@]}"; do
    if ! standin_current "$var"; then
      require_docker
      with_lock build_missing
      return
    fi
  done
}

remove_standins() {
  local var images=() image users failed=0
  for var in "${VARS[@]}"; do images+=("$(standin "$var")"); done
  # Refuse before removing anything: half a set of stand-ins, or an image untagged under a
  # running stack (or one built FROM it), is worse than no change at all.
  for image in "${images[@]}" "$STANDIN_BASE_IMAGE"; do
    image_exists "$image" || continue
    users="$(docker ps -a --filter "ancestor=$image" --format '{{.Names}}' | sort -u | paste -sd' ' -)"
    [ -z "$users" ] || die "containers use $image (or an image built on it): $users; remove them first (e.g. make down)"
  done
  # The base last: it is the parent of the others.
  for image in "${images[@]}" "$STANDIN_BASE_IMAGE"; do
    image_exists "$image" || continue
    log "removing $image"
    docker image rm "$image" >/dev/null || failed=1
  done
  [ "$failed" -eq 0 ] || die "some stand-ins are still used by containers (see docker ps -a)"
}

usage() {
  sed -n '/^# Usage:/,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    env)
      case "${TASKQ_IMAGES:-auto}" in
        official) print_env official ;;
        standin) ensure_standins; print_env standin ;;
        auto)
          require_docker
          if official_available; then
            print_env official
          else
            ensure_standins
            print_env standin
          fi
          ;;
        *) die "TASKQ_IMAGES must be auto, official or standin (got '$TASKQ_IMAGES')" ;;
      esac
      ;;
    standins) ensure_standins ;;
    rebuild) require_docker; with_lock remove_standins; ensure_standins ;;
    clean) require_docker; with_lock remove_standins ;;
    help | -h | --help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
