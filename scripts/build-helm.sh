#!/usr/bin/env bash
# Builds helm (helm.sh/helm/v4) from its Go module, once per machine: tests/helm renders, lints
# and installs charts/memoserve-operator with it. Cached outside the repository, keyed by version.
# Prints the path of the binary on its last line.
set -euo pipefail

version="v4.3.2"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/memoserve/tools"
bin_dir="$cache_root/helm-$version"
if [[ ! -x "$bin_dir/helm" ]]; then
  if [[ -n "${MEMOSERVE_HELM_NO_BUILD:-}" ]]; then
    echo "build-helm: helm $version is not built yet in $bin_dir; run scripts/build-helm.sh (make test does)" >&2
    exit 1
  fi
  if ! command -v go >/dev/null; then
    echo "build-helm: the Go toolchain is needed to build helm" >&2
    exit 1
  fi
  echo "build-helm: building helm $version into $bin_dir (first run on this machine)" >&2
  rm -rf "$bin_dir.partial"
  mkdir -p "$bin_dir.partial"
  # The version stamp helm's own release build sets (else `helm version` says v4.x-dev).
  CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$bin_dir.partial" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
    "helm.sh/helm/v4/cmd/helm@$version" >&2
  rm -rf "$bin_dir"
  mv "$bin_dir.partial" "$bin_dir"
fi
echo "$bin_dir/helm"
