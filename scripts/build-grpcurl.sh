#!/usr/bin/env bash
# Builds grpcurl (github.com/fullstorydev/grpcurl) from its Go module, once per machine: the
# tests run the grpcurl command `memoserve run` prints, against the gRPC port, via reflection.
# Prints the path of the binary on its last line.
set -euo pipefail

version="v1.9.3"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/memoserve/tools"
bin_dir="$cache_root/grpcurl-$version"
if [[ ! -x "$bin_dir/grpcurl" ]]; then
  if ! command -v go >/dev/null; then
    echo "build-grpcurl: the Go toolchain is needed to build grpcurl" >&2
    exit 1
  fi
  mkdir -p "$bin_dir"
  GOBIN="$bin_dir" go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$version" >&2
fi
echo "$bin_dir/grpcurl"
