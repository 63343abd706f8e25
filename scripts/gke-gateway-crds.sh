#!/usr/bin/env bash
# GKE's HealthCheckPolicy and GCPBackendPolicy CRDs (networking.gke.io/v1), for the e2e control
# plane and the schema checks of the objects memoserve renders. They are not in a Go module the
# module proxy serves, so they come from their source repository, GoogleCloudPlatform/gke-gateway-api
# (config/crd, Apache License 2.0), at a pinned commit, and are kept in a cache outside this
# repository with the licence and a SOURCE file naming where they came from.
#
#   scripts/gke-gateway-crds.sh                 clone the repository (git, over HTTPS)
#   scripts/gke-gateway-crds.sh GIT_DIR         take them from a local clone or mirror
#
# Refresh: set COMMIT to a newer commit of the repository and run the script. Prints the
# directory holding the files on its last line.
set -euo pipefail

COMMIT="fc40d606a5332f11a8883f85caff66b63c4e88ef"
REPOSITORY="https://github.com/GoogleCloudPlatform/gke-gateway-api"
FILES=(
  config/crd/networking.gke.io_healthcheckpolicies.yaml
  config/crd/networking.gke.io_gcpbackendpolicies.yaml
  LICENSE
)
cache_root="${MEMOSERVE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memoserve/e2e}"
dir="$cache_root/gke-gateway-api-${COMMIT:0:12}"

if [[ -f "$dir/SOURCE" ]]; then
  echo "$dir"
  exit 0
fi

source_dir="${1:-}"
if [[ -z "$source_dir" ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  git clone -q --bare --filter=blob:none "$REPOSITORY" "$tmp/repo.git"
  source_dir="$tmp/repo.git"
fi

mkdir -p "$dir.partial"
for file in "${FILES[@]}"; do
  git --git-dir="$(git -C "$source_dir" rev-parse --absolute-git-dir)" show "$COMMIT:$file" \
    >"$dir.partial/$(basename "$file")"
done
printf '%s\n' "$REPOSITORY at commit $COMMIT: ${FILES[*]} (Apache License 2.0: LICENSE)" \
  >"$dir.partial/SOURCE"
rm -rf "$dir"
mv "$dir.partial" "$dir"
echo "$dir"
