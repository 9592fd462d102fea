#!/usr/bin/env bash
# Puts promtool, Prometheus 2.42's (Debian 12's package; the alert rules must load in it and in
# 3.x), into .tools/prometheus/promtool: unpacked from the .deb, not installed (installing pulls
# about 300 MB of JavaScript for the web UI the tests do not use).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=2.42.0
target=.tools/prometheus/promtool
if [ -x "$target" ] && "$target" --version 2>&1 | grep -q "version $VERSION"; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt writes as its own user where it can; a temporary folder it cannot enter only warns.
chmod 0755 "$work"
(cd "$work" && apt-get download prometheus >/dev/null 2>&1) || {
  echo "prom-tools: apt-get download prometheus failed (run apt-get update, or scripts/host-setup.sh)" >&2
  exit 1
}
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$(dirname "$target")"
install -m 0755 "$work/root/usr/bin/promtool" "$target"
if ! "$target" --version 2>&1 | grep -q "version $VERSION"; then
  echo "prom-tools: expected promtool $VERSION, got: $("$target" --version 2>&1 | head -1)" >&2
  exit 1
fi
echo "prom-tools: $("$target" --version 2>&1 | head -1) in $target"
