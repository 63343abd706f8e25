#!/usr/bin/env bash
# The Gateway API's standard-channel CRDs (Gateway, HTTPRoute, ...), for the e2e control plane
# and the schema checks of the objects memoserve renders: as the sigs.k8s.io/gateway-api Go
# module ships them (config/crd/standard), fetched into the Go module cache (nothing is kept in
# this repository). The version is the one GKE 1.34 installs (docs/gke.md).
# Prints the directory holding the CRDs on its last line.
set -euo pipefail

version="v1.4.1"
if ! command -v go >/dev/null; then
  echo "gateway-api-crds: the Go toolchain is needed to fetch sigs.k8s.io/gateway-api" >&2
  exit 1
fi
dir="$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
test -d "$dir/config/crd/standard"
echo "$dir/config/crd/standard"
