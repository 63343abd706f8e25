#!/usr/bin/env bash
# Builds the e2e tier's local control plane from Go modules: kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl (k8s.io/kubernetes), etcd
# (go.etcd.io/etcd/server/v3 at the version Kubernetes pins) and kwok.
# The binaries are cached outside the repository, keyed by version, so only
# the first run on a machine pays for the build (~6 min on a quiet 2-core machine, ~14 min on
# a fresh 2-vCPU one; downloads included: docs/e2e.md).
# Prints the directory holding the binaries on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
toolchain="$here/tests/e2e/toolchain"

k8s_version="v1.34.4"
kwok_version="v0.8.0"
etcd_version="$(grep -oE "go.etcd.io/etcd/server/v3 v[0-9.]+" "$toolchain/go.mod" | cut -d" " -f2)"
cache_root="${MEMOSERVE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memoserve/e2e}"
bin_dir="$cache_root/k8s-$k8s_version-etcd-$etcd_version-kwok-$kwok_version"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)
files=(kwok-stages.yaml)

missing=()
for b in "${binaries[@]}"; do
  [[ -x "$bin_dir/$b" ]] || missing+=("$b")
done
for f in "${files[@]}"; do
  [[ -f "$bin_dir/$f" ]] || missing+=("$f")
done
if ((${#missing[@]} == 0)); then
  echo "$bin_dir"
  exit 0
fi

if [[ -n "${MEMOSERVE_E2E_NO_BUILD:-}" ]]; then
  echo "build-control-plane: ${missing[*]} not built yet in $bin_dir; run scripts/build-control-plane.sh (make test does)" >&2
  exit 1
fi
if ! command -v go >/dev/null; then
  echo "build-control-plane: the Go toolchain is needed to build ${missing[*]}" >&2
  exit 1
fi

echo "build-control-plane: building ${missing[*]} into $bin_dir (first run on this machine)" >&2
mkdir -p "$bin_dir.partial"
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
# The version stamps Kubernetes' own release build sets; without them the
# commands report v0.0.0 and kubectl warns about version skew.
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  stamp+=" -X $pkg.gitTreeState=clean"
done

(
  cd "$toolchain"
  export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  go build -trimpath -ldflags "-s -w$stamp" -o "$bin_dir.partial/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl \
    ./cmd/etcd
  # kwok needs newer k8s.io libraries than the control plane's, so it is
  # installed from its own module (no replace directives there).
  GOBIN="$bin_dir.partial" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"
  # kwok's own default behaviour (what kwokctl configures): nodes become Ready and renew
  # their Leases; pods become Running and Ready, complete, and go when deleted. The Stage
  # files ship in kwok's module; they are taken from there, not kept in this repository.
  kwok_dir="$(go mod download -json "sigs.k8s.io/kwok@$kwok_version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"
    cat "$kwok_dir/kustomize/stage/$stage.yaml"
  done >"$bin_dir.partial/kwok-stages.yaml"
)
rm -rf "$bin_dir"
mv "$bin_dir.partial" "$bin_dir"
echo "$bin_dir"
