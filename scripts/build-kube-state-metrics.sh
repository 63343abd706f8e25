#!/usr/bin/env bash
# Builds kube-state-metrics from its Go module, for tests/observability: the dashboard's
# replicas-against-HPA panel reads its series, exported from the e2e control plane's objects.
# Cached outside the repository, keyed by version, beside the control plane's binaries; only
# the first run on a machine pays for the build (21 min measured on a 2-vCPU AMD EPYC shared
# with three other Go builds, load average ~17, downloads included; not measured on an idle machine).
# Prints the binary's path on its last line.
set -euo pipefail

version="v2.20.0"
cache_root="${MEMOSERVE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memoserve/e2e}"
bin_dir="$cache_root/kube-state-metrics-$version"
binary="$bin_dir/kube-state-metrics"

if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi
if [[ -n "${MEMOSERVE_E2E_NO_BUILD:-}" ]]; then
  echo "build-kube-state-metrics: not built yet in $bin_dir; run scripts/build-kube-state-metrics.sh (make test does)" >&2
  exit 1
fi
if ! command -v go >/dev/null; then
  echo "build-kube-state-metrics: the Go toolchain is needed to build kube-state-metrics" >&2
  exit 1
fi

echo "build-kube-state-metrics: building $version into $bin_dir (first run on this machine)" >&2
rm -rf "$bin_dir.partial"
mkdir -p "$bin_dir.partial"
CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$bin_dir.partial" \
  go install -trimpath -ldflags "-s -w" "k8s.io/kube-state-metrics/v2@$version"
rm -rf "$bin_dir"
mv "$bin_dir.partial" "$bin_dir"
echo "$binary"
