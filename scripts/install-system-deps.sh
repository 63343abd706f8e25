#!/usr/bin/env bash
# Debian packages the tests and benchmarks need: redis-server (real Redis, TLS-enabled build),
# openssl (test certificates), wrk (benchmarks), setpriv (util-linux: the test servers' parent
# death signal). Installs only what is missing.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v openssl >/dev/null || missing+=(openssl)
command -v wrk >/dev/null || missing+=(wrk)
command -v setpriv >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# prometheus (Debian's package: one Go binary, no build) for tests/observability, which runs the
# Grafana dashboard's queries against a real Prometheus. Its recommends (node exporter ...) are
# not needed; the test starts its own server on a free port, never the packaged service.
if ! command -v prometheus >/dev/null; then
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
